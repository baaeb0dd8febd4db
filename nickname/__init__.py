"""Nickname rules and friendly suggestions (pure logic, no I/O)."""
