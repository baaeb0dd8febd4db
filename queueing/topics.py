"""Topics a visitor may pick, with Dutch and English labels (configurable with [[topics]])."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    id: str
    label_nl: str
    label_en: str


DEFAULT_TOPICS = (
    Topic("school", "School", "School"),
    Topic("thuis", "Thuis", "Home"),
    Topic("vriendschap", "Vriendschap", "Friends"),
    Topic("liefde", "Verliefdheid en relaties", "Love and relationships"),
    Topic("pesten", "Pesten", "Bullying"),
    Topic("gevoelens", "Gevoelens", "Feelings"),
    Topic("seksualiteit", "Seksualiteit", "Sexuality"),
    Topic("lichaam", "Lichaam en gezondheid", "Body and health"),
    Topic("geld", "Geld", "Money"),
    Topic("anders", "Iets anders", "Something else"),
)


def topics_for(configured: Iterable[Mapping[str, str]]) -> tuple[Topic, ...]:
    """The configured topics (``[[topics]]`` with id, nl, en), or the defaults."""
    topics = tuple(
        Topic(t["id"], t.get("nl", t["id"]), t.get("en", t.get("nl", t["id"]))) for t in configured
    )
    if len({t.id for t in topics}) != len(topics):
        raise ValueError("[[topics]] ids must be unique")
    return topics or DEFAULT_TOPICS
