"""Nickname rules: length, characters, no contact details, case-insensitive uniqueness key."""

from __future__ import annotations

import random

import pytest

from nickname import NicknameError, nickname_key, normalise, suggestions, taken_message, validate


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Sam  ", "Sam"),
        ("Noor  de   Vries", "Noor de Vries"),
        ("Ｓａｍ", "Sam"),
        ("Zoë", "Zoë"),
        ("Mehmet_07", "Mehmet_07"),
        ("a.b-c", "a.b-c"),
        ("Саша", "Саша"),
        ("سارا", "سارا"),
        ("小明", "小明"),
        ("x" * 24, "x" * 24),
    ],
)
def test_valid_nicknames(raw: str, expected: str) -> None:
    """Letters of any script, digits, space and _ - . pass, normalised."""
    assert validate(raw) == expected


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a", "too_short"),
        ("x" * 25, "too_long"),
        ("sam!", "bad_chars"),
        ("<script>", "bad_chars"),
        ("😀😀", "bad_chars"),
        ("www.sam.nl", "contact_info"),
        ("sam.nl", "contact_info"),
        ("http://x", "contact_info"),
        ("sam@mail.nl", "contact_info"),
        ("0612345678", "contact_info"),
        ("06 12 34 56 78", "contact_info"),
        ("Sam 0612 3456", "contact_info"),
    ],
)
def test_invalid_nicknames(raw: str, reason: str) -> None:
    """Each broken rule gives its own reason."""
    with pytest.raises(NicknameError) as info:
        validate(raw)
    assert info.value.reason == reason


def test_messages_in_the_visitors_language() -> None:
    """The reason is told in Dutch by default and in English on request."""
    with pytest.raises(NicknameError) as nl:
        validate("a")
    with pytest.raises(NicknameError) as en:
        validate("a", "en")
    assert "kort" in nl.value.message and "short" in en.value.message
    assert taken_message("nl") != taken_message("en")


def test_uniqueness_key_ignores_case_and_width() -> None:
    """Robin, ROBIN, ' robin ' and full-width Ｒｏｂｉｎ are one nickname."""
    keys = {nickname_key(n) for n in ("Robin", "ROBIN", " robin ", "Ｒｏｂｉｎ")}
    assert len(keys) == 1
    assert normalise("a\tb") == "a b"


def test_suggestions_pass_the_rules() -> None:
    """A thousand suggestions, both languages, all valid."""
    rng = random.Random(1)
    for lang in ("nl", "en"):
        for name in suggestions(rng, 500, lang):
            assert validate(name) == name
