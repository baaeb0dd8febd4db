"""Crisis signals: the labelled set's quality, negation, hard negatives, chat spelling."""

from __future__ import annotations

import pytest

from benchmarks.moderation_eval import evaluate, load, load_crisis
from moderation import analyse, detect
from moderation.normalise import normalise


def test_quality_on_the_full_labelled_set() -> None:
    """Recall at least 0.9 on crisis items and precision at least 0.8, over tuning + held-out."""
    rows = load_crisis()
    assert len(rows) >= 300
    assert {lang for _, lang, _ in rows} == {"nl", "en"}
    result = evaluate(rows)
    assert result.recall >= 0.9, result.misses
    assert result.precision >= 0.8, result.false_alarms


def test_held_out_set_is_separate_and_large_enough() -> None:
    """The held-out set has 150+ sentences, both labels and languages, none from the tuning set."""
    tuning = {text for _, _, text in load("crisis_labelled")}
    held_out = load("crisis_heldout")
    assert len(held_out) >= 150
    assert {(label, lang) for label, lang, _ in held_out} == {
        (label, lang) for label in ("crisis", "ok") for lang in ("nl", "en")
    }
    assert not tuning & {text for _, _, text in held_out}


def test_quality_holds_per_language_on_the_held_out_set() -> None:
    """On the held-out set alone, each language keeps recall >= 0.9 and precision >= 0.8."""
    for lang in ("nl", "en"):
        result = evaluate([row for row in load("crisis_heldout") if row[1] == lang])
        assert result.recall >= 0.9, (lang, result.misses)
        assert result.precision >= 0.8, (lang, result.false_alarms)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mezelf op te hangen", "mezelf op hangen"),
        ("van kant te maken", "van kant maken"),
        ("hij vermoordt me", "hij vermoord me"),
        ("k wil nie meer", "ik wil niet meer"),
        ("i wanna die rn", "i want to die right now"),
        ("ik denk aan zelmoord", "ik denk aan zelfmoord"),
        ("sucide", "suicide"),
        ("te veel", "te veel"),
        ("ill", "ill"),
    ],
)
def test_normalise_folds_spelling_variation(text: str, expected: str) -> None:
    """Te-infinitives, d/dt, chat words and one-letter misspellings of key words are folded."""
    assert normalise(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ik denk erover om mezelf op te hangen",
        "ik hang mezelf vanavond op",
        "ik wil mezelf om zeep helpen",
        "ik denk erover om er een eind aan te maken",
        "ik ben bang dat hij me vermoord",
        "ik wordt thuis geslagen",
        "k wil nie meer leven",
        "ik wil zelfmord plegen",
        "is het normaal dat ik aan de dood denk?",
        "is it normal to want to die?",
        "ik ga dood",
        "he said he'll kill me if i tell anyone",
    ],
)
def test_general_forms_are_recognised(text: str) -> None:
    """Separable verbs, d/dt, chat spelling, misspellings, questions and 'ik ga dood' alone."""
    assert analyse(text).crisis


@pytest.mark.parametrize(
    "text",
    [
        "dat examen was zelfmoord",
        "ik ga dood van het lachen",
        "ik ga dood als ik die toets moet maken haha",
        "ik ga je killen in fortnite",
        "mijn moeder vermoordt me als ze mijn rapport ziet",
        "my brother beat me at chess",
        "that song is about suicide",
        "my friend killed himself last year",
    ],
)
def test_figurative_and_third_party_past_are_no_crisis(text: str) -> None:
    """Figurative 'X was zelfmoord', hyperbole, games, songs and grief are not flagged."""
    assert not analyse(text).crisis


@pytest.mark.parametrize(
    "text, category",
    [
        ("ik wil dood", "suicide"),
        ("IK WIL DOOOOD!!", "suicide"),
        ("ik wil d00d", "suicide"),
        ("ik denk aan zelfmoord", "suicide"),
        ("i want to kill myself", "suicide"),
        ("ik kras mezelf", "self_harm"),
        ("i cut myself", "self_harm"),
        ("mijn vader slaat me", "abuse"),
        ("he raped me", "abuse"),
        ("ik ben niet veilig thuis", "danger"),
        ("i'm scared to go home", "danger"),
    ],
)
def test_each_category(text: str, category: str) -> None:
    """Each category is recognised in Dutch and English."""
    assert category in detect(text).categories


@pytest.mark.parametrize(
    "text",
    [
        "ik wil niet dood",
        "i don't want to die",
        "ik zou nooit zelfmoord plegen",
        "mijn vader slaat me nooit",
        "i'm not suicidal",
        "ik ga dood van het lachen",
        "this homework is killing me",
        "mijn telefoon is dood",
        "ik ben doodmoe",
        "ik wil niet meer naar voetbal",
        "i don't want to live with my dad",
    ],
)
def test_negations_and_hard_negatives(text: str) -> None:
    """A negated mention or an idiom is no crisis."""
    assert not analyse(text).crisis


@pytest.mark.parametrize(
    "text", ["ik wil niet meer leven", "i don't want to live anymore", "ik ben niet veilig"]
)
def test_negation_that_is_the_signal(text: str) -> None:
    """'Niet meer leven', 'not safe': here the negation is the danger itself."""
    assert analyse(text).crisis
