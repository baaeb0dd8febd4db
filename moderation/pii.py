"""Personal data in a visitor's text: phone numbers, e-mail addresses, Dutch postcodes with a
house number, IBANs and links. Found to warn the visitor gently and to redact what is stored.

Phone numbers use the ``phonenumbers`` library (Dutch and international forms); the rest are
patterns, the IBAN checked with its mod-97 checksum so ordinary numbers are not mistaken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import phonenumbermatcher, phonenumberutil

PLACEHOLDERS = {
    "phone": "[phone]",
    "email": "[email]",
    "postcode": "[postcode]",
    "iban": "[iban]",
    "url": "[link]",
}

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", re.UNICODE)
#: A Dutch postcode with a house number: "1234 AB 12", "1234ab, nr 5", "1234 AB huisnummer 7a".
_POSTCODE = re.compile(
    r"\b[1-9]\d{3} ?(?-i:(?!(?:en|of|om|in|op|na|te|is|at|to|on|or|an|as|by|if|it|me|my|no|so|up"
    r"|we|ik|je|ze|al|nu|er|ja|sa|sd|ss)\b))[a-zA-Z]{2}(?![a-zA-Z]),? ?"
    r"(?:(?:nr|no|nummer|huisnummer|huisnr)\.? ?)?\d{1,5}"
    r"(?: ?[a-zA-Z]\b|\b)",
    re.I,
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", re.I)
_URL = re.compile(
    r"\b(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:nl|be|com|org|net|eu|io|info|me"
    r"|app|tk|xyz|de|co\.uk|uk|fr|gg|ly|tv|co|dev|ai|gl|cc|link|site|online|shop|store|live)"
    r"(?:/\S*)?\b",
    re.I,
)


_DIGIT = re.compile(r"\d")
#: The fewest digits a number ``phonenumbers`` accepts as valid can have: a Dutch national
#: number is at least 5 digits, and a country code with the shortest national number anywhere
#: at least 6 (``tests/moderation`` recomputes this from the library's metadata).
PHONE_MIN_DIGITS = 5
#: A stretch of the characters the phone matcher's candidates are made of before any
#: extension: digits, its punctuation (spaces, dashes, dots, brackets, "x", ...) and leading
#: "+" or "(". All digits of a number it finds lie in one such stretch.
_PHONE_STRETCH = re.compile(
    # the punctuation first: it starts with "-", which is literal only at the start of a class
    "[" + phonenumberutil._VALID_PUNCTUATION + phonenumbermatcher._LEAD_CLASS_CHARS + r"\d]+",
    re.IGNORECASE | re.UNICODE,
)
#: Digits that an IBAN ("NL91...") and a postcode with a house number ("1234 AB 5") contain.
IBAN_MIN_DIGITS = 2
POSTCODE_MIN_DIGITS = 5


@dataclass(frozen=True, slots=True)
class PiiMatch:
    kind: str
    start: int
    end: int


def _iban_valid(raw: str) -> bool:
    iban = raw.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34:
        return False
    digits = "".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


def find_pii(text: str, *, prefilter: bool = True) -> list[PiiMatch]:
    """Each piece of personal data in ``text``. With ``prefilter`` (the default) a kind is
    only looked for when the text has what every match of it contains (enough digits, for a
    phone number within one stretch of digits and punctuation; an "@"; a "." or "://");
    without it every kind is looked for. Both give the same result."""
    digits = len(_DIGIT.findall(text))
    look = {
        "phone": digits >= PHONE_MIN_DIGITS and _may_hold_phone(text),
        "email": "@" in text,
        "iban": digits >= IBAN_MIN_DIGITS,
        "postcode": digits >= POSTCODE_MIN_DIGITS,
        "url": "." in text or "://" in text,
    }
    if not prefilter:
        look = dict.fromkeys(look, True)
    found: list[PiiMatch] = []
    if look["phone"]:
        matcher = phonenumbers.PhoneNumberMatcher(text, "NL", leniency=phonenumbers.Leniency.VALID)
        for phone in matcher:
            found.append(PiiMatch("phone", phone.start, phone.end))
    if look["email"]:
        for match in _EMAIL.finditer(text):
            found.append(PiiMatch("email", match.start(), match.end()))
    if look["iban"]:
        for match in _IBAN.finditer(text):
            if _iban_valid(match.group(0)):
                found.append(PiiMatch("iban", match.start(), match.end()))
    if look["postcode"]:
        for match in _POSTCODE.finditer(text):
            found.append(PiiMatch("postcode", match.start(), match.end()))
    if look["url"]:
        for match in _URL.finditer(text):
            if not any(f.kind == "email" and f.start <= match.start() < f.end for f in found):
                found.append(PiiMatch("url", match.start(), match.end()))
    return _without_overlaps(found)


def _may_hold_phone(text: str) -> bool:
    """Whether one stretch of phone-number characters holds enough digits for a number."""
    return any(
        len(_DIGIT.findall(stretch)) >= PHONE_MIN_DIGITS
        for stretch in _PHONE_STRETCH.findall(text)
        if len(stretch) >= PHONE_MIN_DIGITS
    )


def _without_overlaps(found: list[PiiMatch]) -> list[PiiMatch]:
    kept: list[PiiMatch] = []
    for match in sorted(found, key=lambda m: (m.start, -(m.end - m.start))):
        if kept and match.start < kept[-1].end:
            continue
        kept.append(match)
    return kept


def pii_kinds(text: str, *, prefilter: bool = True) -> tuple[str, ...]:
    return tuple(sorted({m.kind for m in find_pii(text, prefilter=prefilter)}))


def redact(text: str) -> str:
    """The text with each piece of personal data replaced by a placeholder like ``[phone]``."""
    out, last = [], 0
    for match in find_pii(text):
        out += [text[last : match.start], PLACEHOLDERS[match.kind]]
        last = match.end
    return "".join(out) + text[last:]
