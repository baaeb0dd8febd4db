"""Personal data is found and redacted; ordinary numbers are left alone; abuse is flagged."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.moderation_eval import evaluate_abuse, load_abuse, load_crisis
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
        ("bel me: 06 12 34 56 78", "phone"),
        ("mail: Sam_01@Gmail.COM", "email"),
        ("1234ab, nr 5", "postcode"),
        ("postcode 1234 ab huisnummer 12", "postcode"),
        ("ik woon op 1234AB12", "postcode"),
        ("nl91abna0417164300", "iban"),
        ("GB82 WEST 1234 5698 7654 32", "iban"),
        ("http://foo.nl", "url"),
        ("mijn insta is instagram.com/naam", "url"),
        ("tiktok.com/@naam", "url"),
        ("bit.ly/abc123", "url"),
        ("discord.gg/abcd", "url"),
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
        "om 14:30 ben ik thuis",
        "het kost 12,50 euro",
        "in 2024 en 2025 ging het beter",
        "in 2024 en 12 keer",
        "ik ben 15 en zit in 3 havo",
        "15-06-2024 was mijn verjaardag",
        "10.000 stappen",
        "prijs 19.99",
        "hoi.ik ben sam",
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
    "text, redacted",
    [
        ("bel 06-12345678 om 14:30", "bel [phone] om 14:30"),
        ("+31 6 12345678 of +44 20 7946 0958", "[phone] of [phone]"),
        ("ik woon op 1234 AB 12 sinds 2024", "ik woon op [postcode] sinds 2024"),
        ("IBAN NL91 ABNA 0417 1643 00, ik ben 15", "IBAN [iban], ik ben 15"),
        ("zie www.example.nl en instagram.com/naam", "zie [link] en [link]"),
        ("ik heb een 7,5 en mail sam@example.nl", "ik heb een 7,5 en mail [email]"),
    ],
)
def test_redaction_of_mixed_text(text: str, redacted: str) -> None:
    """Every kind is replaced in place; times, years, ages and grades beside them stay."""
    assert redact(text) == redacted


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


@pytest.mark.parametrize(
    "text, abusive",
    [
        ("ik maak je af", True),
        ("ik kom je halen", True),
        ("you stupid bitch", True),
        ("vuile teringlijer", True),
        ("ga toch dood", True),
        ("ik ga dood", False),
        ("ik ga dood van het lachen", False),
        ("die leraar is een idioot", False),
        ("hij zei dat ik een hoer ben", False),
        ("ik ga je killen in fortnite", False),
    ],
)
def test_abuse_audit_cases(text: str, abusive: bool) -> None:
    """Threats and insults at the reader are flagged; 'ik ga dood', third parties, games not."""
    assert is_abusive(text) is abusive


@pytest.mark.parametrize(
    "text",
    [
        "ik weet waar je woont, game over",
        "ik weet waar je woont … game over",
        "i know where you live lol, good game",
        "ik maak je af, uno is stom",
        "i will kill you. fortnite was fun though",
        "hij zei het al: ik weet waar je woont",
        "she said it first: i'm coming for you",
        "stuur nudes, zei hij",
        "send nudes and then we play a game",
        "je bent een idioot, die game was saai",
        "hij zei iets maar jij bent een hoer",
        "he said hi, you stupid bitch",
        "vuile hoer, mooie game",
        "rot op en ga lekker fortnite spelen",
    ],
)
def test_an_excuse_in_another_clause_does_not_hide_abuse(text: str) -> None:
    """A game word or reported speech elsewhere in the message does not excuse abuse in
    another clause, and never excuses a threat or sexual harassment."""
    assert is_abusive(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "hij zei dat ik een hoer ben",
        "rot op, zei mijn moeder tegen mij",
        "je bent een idioot, zei hij",
        "vuile hoer, zei hij",
        "she told me i'm a stupid bitch",
        "you are a bitch, she said",
        "ik ga je afmaken met uno haha",
        "i'll kill you in fortnite lol",
        "ik ben dom maar hij noemde me een mongool",
    ],
)
def test_an_excuse_still_holds_in_its_own_clause(text: str) -> None:
    """Reported speech and game talk are not abuse: the excuse covers its own clause (and,
    for an inquit such as ', zei hij', the clause before)."""
    assert is_abusive(text) is False


def test_abuse_quality_on_the_labelled_sets() -> None:
    """Abuse recall >= 0.85 and precision >= 0.85 on the abuse sets (development + blind),
    and no crisis-set sentence is taken for abuse."""
    rows = load_abuse()
    assert len(rows) >= 100 and {lang for _, lang, _ in rows} == {"nl", "en"}
    result = evaluate_abuse(rows)
    assert result.recall >= 0.85, result.misses
    assert result.precision >= 0.85, result.false_alarms
    as_ok = [("ok", lang, text) for _, lang, text in load_crisis()]
    assert evaluate_abuse(as_ok).false_alarms == []


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
