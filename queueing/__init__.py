"""Waiting queue policy and assignment (pure logic, no I/O)."""
