"""Abusive or threatening text aimed at the counsellor: flagged for them, never hidden.

Swearing about one's own life ("kut school", "fuck my life") is not abuse; insults and
threats aimed at the person on the other side are.
"""

from __future__ import annotations

import re

from moderation.normalise import normalise

ABUSE = [
    r"\b(kys|kill yourself|go die|ga dood|sterf)\b",
    r"\b(je|jij|u|you|ur|you're|youre) (bent |are |r )?(een |a )?(kanker|tyfus|tering)?"
    r"(hoer|slet|kutwijf|mongool|idioot|bitch|whore|slut|retard|cunt|loser|klootzak)\b",
    r"\b(kankerhoer|kanker ?lijer|tyfuslijer|teringlijer)\b",
    r"\bik (weet|vind) waar (je|jij) woont\b",
    r"\bi know where you live\b",
    r"\bik (ga|zal) (je|jou) (vermoorden|pakken|neersteken|kapot maken)\b",
    r"\bi('ll| will) (kill|find|hurt|stab) you\b",
    r"\b(fuck|fck) (you|u|off)\b",
    r"\brot op\b",
    r"\bstuur (me )?(naakt|nudes)",
    r"\bsend (me )?nudes\b",
    r"\bshow me your (body|boobs|tits)\b",
]
_ABUSE = re.compile("|".join(f"(?:{p})" for p in ABUSE))


def is_abusive(text: str) -> bool:
    return bool(_ABUSE.search(normalise(text)))
