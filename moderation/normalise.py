"""Text as the rules read it: lower case, no accents, chat spelling undone."""

from __future__ import annotations

import re
import unicodedata

_LEET = str.maketrans({"0": "o", "3": "e", "1": "i", "4": "a", "$": "s", "@": "a", "7": "t"})
_REPEATS = re.compile(r"(.)\1{2,}")
_APOSTROPHES = re.compile(r"[’‘`´]")
_SPACE = re.compile(r"\s+")
_WORD_DIGITS = re.compile(r"(?<=[a-z])[0134$@7]+|[0134$@7]+(?=[a-z])")


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalise(text: str) -> str:
    """``"Ik wil DOOOOD!!"`` → ``"ik wil dood!!"``; ``"d00d"`` → ``"dood"``; ``"don’t"`` →
    ``"don't"``. Digits inside words become letters (leetspeak); other numbers stay."""
    low = strip_accents(text.casefold())
    low = _APOSTROPHES.sub("'", low)
    low = _WORD_DIGITS.sub(lambda m: m.group(0).translate(_LEET), low)
    low = _REPEATS.sub(r"\1\1", low)
    return _SPACE.sub(" ", low).strip()
