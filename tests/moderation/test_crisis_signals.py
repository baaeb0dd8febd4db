"""Crisis signals: the labelled set's quality, negation, hard negatives, chat spelling."""

from __future__ import annotations

import pytest

from benchmarks.moderation_eval import evaluate, load
from moderation import analyse, detect


def test_quality_on_the_labelled_set() -> None:
    """Recall at least 0.9 on crisis items and precision at least 0.8, over 300+ sentences."""
    rows = load()
    assert len(rows) >= 300
    assert {lang for _, lang, _ in rows} == {"nl", "en"}
    result = evaluate(rows)
    assert result["recall"] >= 0.9, result["misses"]
    assert result["precision"] >= 0.8, result["false_alarms"]


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
