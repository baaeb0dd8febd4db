"""TEMPORARY stub until the nickname branch lands."""

from __future__ import annotations

import random
import unicodedata


class NicknameError(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def normalise(raw: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", raw).split())


def nickname_key(nick: str) -> str:
    return normalise(nick).casefold()


def validate(raw: str, lang: str = "nl") -> str:
    nick = normalise(raw)
    if not 2 <= len(nick) <= 24:
        raise NicknameError(
            "length",
            "Kies een bijnaam van 2 tot 24 tekens."
            if lang == "nl"
            else "Choose a nickname of 2 to 24 characters.",
        )
    return nick


def taken_message(lang: str) -> str:
    return "Deze bijnaam is al in gebruik." if lang == "nl" else "This nickname is in use."


def suggest(rng: random.Random, lang: str = "nl") -> str:
    return f"Vos{rng.randint(1, 99)}"
