"""Input limits, crisis signals, abuse and personal-data rules (pure logic, no I/O)."""


def redact(text: str) -> str:
    """TEMPORARY stub until the moderation branch lands."""
    return text
