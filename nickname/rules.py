"""What a nickname may be. Pure: strings in, a nickname or a reason out.

2-24 characters after trimming and NFKC normalisation; letters of any script (with their
combining marks), digits, space and ``_ - .``; nothing that reaches a person outside the
chat (a link, an e-mail address, a phone number). Unique among visitors waiting or chatting
now, compared case-insensitively through :func:`nickname_key` (the server keeps the set).
"""

from __future__ import annotations

import re
import unicodedata

MIN_LENGTH = 2
MAX_LENGTH = 24
PUNCTUATION = frozenset(" _-.")

_URL = re.compile(r"(https?:|www\.|\.(nl|be|com|org|net|eu|io|app|me|tk|xyz|info)\b)", re.I)
_EMAIL = re.compile(r"\S+@\S+")
_DIGITS = re.compile(r"\d")

MESSAGES: dict[str, dict[str, str]] = {
    "empty": {"nl": "Kies een bijnaam.", "en": "Choose a nickname."},
    "too_short": {
        "nl": "Je bijnaam is te kort: gebruik minstens 2 tekens.",
        "en": "Your nickname is too short: use at least 2 characters.",
    },
    "too_long": {
        "nl": "Je bijnaam is te lang: gebruik hoogstens 24 tekens.",
        "en": "Your nickname is too long: use at most 24 characters.",
    },
    "bad_chars": {
        "nl": "Gebruik alleen letters, cijfers, spaties en _ - . in je bijnaam.",
        "en": "Use only letters, digits, spaces and _ - . in your nickname.",
    },
    "contact_info": {
        "nl": "Zet geen link, e-mailadres of telefoonnummer in je bijnaam: zo blijf je anoniem.",
        "en": "Don't put a link, e-mail address or phone number in your nickname: "
        "that keeps you anonymous.",
    },
    "taken": {
        "nl": "Deze bijnaam is nu al in gebruik. Kies een andere, bijvoorbeeld met een "
        "cijfer erachter.",
        "en": "Someone is using this nickname right now. Choose another one, for "
        "example with a number after it.",
    },
}


class NicknameError(ValueError):
    """A nickname breaks a rule: ``reason`` for machines, ``message`` for the visitor."""

    def __init__(self, reason: str, lang: str = "nl") -> None:
        self.reason = reason
        self.message = message(reason, lang)
        super().__init__(self.message)


def message(reason: str, lang: str) -> str:
    texts = MESSAGES[reason]
    return texts.get(lang, texts["nl"])


def taken_message(lang: str = "nl") -> str:
    return message("taken", lang)


def normalise(raw: str) -> str:
    """NFKC, trimmed, inner runs of white space folded to one space."""
    return " ".join(unicodedata.normalize("NFKC", raw).split())


def nickname_key(nick: str) -> str:
    """The key for uniqueness: case-insensitive, after normalisation."""
    return normalise(nick).casefold()


def _allowed(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in "LNM" or ch in PUNCTUATION


def validate(raw: str, lang: str = "nl") -> str:
    """The normalised nickname, or :class:`NicknameError`."""
    nick = normalise(raw)
    if not nick:
        raise NicknameError("empty", lang)
    if len(nick) < MIN_LENGTH:
        raise NicknameError("too_short", lang)
    if len(nick) > MAX_LENGTH:
        raise NicknameError("too_long", lang)
    if _URL.search(nick) or _EMAIL.search(nick) or len(_DIGITS.findall(nick)) >= 6:
        raise NicknameError("contact_info", lang)
    if not all(_allowed(ch) for ch in nick) or unicodedata.category(nick[0])[0] == "M":
        raise NicknameError("bad_chars", lang)
    return nick
