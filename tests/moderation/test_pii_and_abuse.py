"""Personal data is found and redacted; ordinary numbers are left alone; abuse is flagged."""

from __future__ import annotations

import subprocess
import sys

import pytest

from moderation import analyse, find_pii, is_abusive, pii_kinds, redact
from moderation.limits import TokenBucket


@pytest.mark.parametrize(
    "text, kind",
    [
        ("bel me op 0612345678", "phone"),
        ("mijn nummer is 06-12345678", "phone"),
        ("06 1234 5678", "phone"),
        ("+31 6 12345678", "phone"),
        ("0031612345678", "phone"),
        ("bel 020-1234567", "phone"),
        ("call +44 20 7946 0958", "phone"),
        ("mail sam.de.vries@example.nl", "email"),
        ("ik woon op 1234 AB 12", "postcode"),
        ("postcode 1234ab, 5a", "postcode"),
        ("NL91ABNA0417164300", "iban"),
        ("NL91 ABNA 0417 1643 00", "iban"),
        ("kijk op www.example.nl", "url"),
        ("https://example.com/x?y=1", "url"),
        ("zie example.nl/pagina", "url"),
    ],
)
def test_kinds_found(text: str, kind: str) -> None:
    """Each kind of personal data is recognised."""
    assert kind in pii_kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "ik ben 14",
        "om 20:30 ben ik thuis",
        "3 keer per week",
        "in 2024 ging het beter",
        "ik heb een 7,5 gehaald",
        "NL91ABNA0417164301",
        "1234 mensen",
        "hoofdstuk 12",
    ],
)
def test_ordinary_numbers_are_not_personal_data(text: str) -> None:
    """Ages, times, counts, grades and a wrong IBAN checksum are left alone."""
    assert find_pii(text) == []


def test_redaction_keeps_the_rest() -> None:
    """Only the personal data is replaced, by a placeholder per kind."""
    text = "hoi, mail me op sam@example.nl of bel 0612345678 ok?"
    assert redact(text) == "hoi, mail me op [email] of bel [phone] ok?"


@pytest.mark.parametrize(
    "text, abusive",
    [
        ("kys", True),
        ("je bent een hoer", True),
        ("ik weet waar je woont", True),
        ("i'll kill you", True),
        ("send nudes", True),
        ("kut school", False),
        ("fuck my life", False),
        ("ik haat mezelf", False),
        ("dank je", False),
    ],
)
def test_abuse_aimed_at_the_counsellor(text: str, abusive: bool) -> None:
    """Insults and threats at the other side are abuse; swearing about one's life is not."""
    assert is_abusive(text) is abusive


def test_token_bucket() -> None:
    """The burst is allowed, then the rate; time passed in, nothing read from a clock."""
    bucket = TokenBucket(rate=5, burst=10)
    assert all(bucket.allow(0.0) for _ in range(10))
    assert not bucket.allow(0.0)
    assert bucket.allow(0.2)
    assert not bucket.allow(0.2)


def test_check_text_cli() -> None:
    """`chatserver check-text` answers one JSON object per line with the same rules."""
    run = subprocess.run(
        [sys.executable, "-m", "chatserver", "check-text"],
        text=True,
        input="ik wil dood\nbel 0612345678\nhoi\n",
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    import json

    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["crisis"] for r in rows] == [True, False, False]
    assert rows[1]["pii"] == ["phone"] and rows[2] == analyse("hoi").to_json_dict()
