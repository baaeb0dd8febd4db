"""Input limits, crisis signals, abuse and personal-data rules (pure logic, no I/O)."""
