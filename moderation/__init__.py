"""Input limits, crisis signals, abuse and personal-data rules (pure logic, no I/O)."""


def redact(text: str) -> str:
    """TEMPORARY stub until the moderation branch lands."""
    import re

    return re.sub(r"\S+@\S+", "[email]", text)


class _Analysis:
    def __init__(self, crisis: bool, abuse: bool, pii: tuple[str, ...]) -> None:
        self.crisis = crisis
        self.crisis_categories: tuple[str, ...] = ("suicide",) if crisis else ()
        self.abuse = abuse
        self.pii = pii

    def to_json_dict(self) -> dict[str, object]:
        return {"crisis": self.crisis, "abuse": self.abuse, "pii": list(self.pii)}


def analyse(text: str) -> _Analysis:
    """TEMPORARY minimal keyword check until the moderation branch lands."""
    low = text.lower()
    crisis = any(w in low for w in ("zelfmoord", "wil dood", "kill myself", "suicide"))
    pii = ("email",) if "@" in low else ()
    return _Analysis(crisis, "kys" in low.split(), pii)
