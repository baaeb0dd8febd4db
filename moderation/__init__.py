"""Input limits, crisis signals, abuse and personal-data rules (pure logic, no I/O).

:func:`analyse` is the one entry the server (and ``chatserver check-text``) uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moderation import abuse, crisis
from moderation.abuse import is_abusive, is_abusive_normalised
from moderation.crisis import CrisisResult, detect, detect_normalised
from moderation.normalise import normalise
from moderation.pii import PiiMatch, find_pii, pii_kinds, redact
from moderation.prefilter import Scan


@dataclass(frozen=True, slots=True)
class TextAnalysis:
    crisis: bool
    crisis_categories: tuple[str, ...]
    abuse: bool
    pii: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "crisis": self.crisis,
            "categories": list(self.crisis_categories),
            "abuse": self.abuse,
            "pii": list(self.pii),
        }


def analyse(text: str, *, prefilter: bool = True) -> TextAnalysis:
    """Crisis signals, abuse and personal data in ``text`` (normalised once). ``prefilter``
    skips the patterns that cannot match (:mod:`moderation.prefilter`); ``prefilter=False``
    runs every pattern and gives the same result (the tests compare the two)."""
    norm = normalise(text)
    if not prefilter:
        found = detect_normalised(norm, prefilter=False)
        abusive = is_abusive_normalised(norm, prefilter=False)
    else:
        # one scan finds the literals of the crisis and the abuse patterns
        present = _SCAN.present(norm)
        found = crisis.detect_prescanned(norm, present[:_CRISIS_SETS])
        abusive = abuse.is_abusive_prescanned(norm, present[_CRISIS_SETS:])
    return TextAnalysis(
        found.crisis, found.categories, abusive, pii_kinds(text, prefilter=prefilter)
    )


_CRISIS_SETS = len(crisis.PATTERN_SETS)
_SCAN = Scan([*crisis.PATTERN_SETS, *abuse.PATTERN_SETS])


__all__ = [
    "CrisisResult",
    "PiiMatch",
    "TextAnalysis",
    "analyse",
    "detect",
    "find_pii",
    "is_abusive",
    "pii_kinds",
    "redact",
]
