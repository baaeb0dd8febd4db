"""Topics a visitor may pick, with Dutch and English labels (configurable with [[topics]]).

A topic marked ``crisis`` (``crisis = true``) is a crisis signal when a visitor picks it:
the visitor moves ahead of every non-urgent one and supervisors are alerted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Topic:
    id: str
    label_nl: str
    label_en: str
    crisis: bool = False


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
    Topic(
        "niet-meer-leven",
        "Niet meer willen leven of jezelf pijn doen",
        "Not wanting to live, or hurting yourself",
        crisis=True,
    ),
    Topic("anders", "Iets anders", "Something else"),
)


def topics_for(configured: Iterable[Mapping[str, Any]]) -> tuple[Topic, ...]:
    """The configured topics (``[[topics]]`` with id, nl, en, crisis), or the defaults."""
    topics = []
    for t in configured:
        crisis = t.get("crisis", False)
        if not isinstance(crisis, bool):
            raise ValueError(f"[[topics]] {t['id']!r}: crisis must be true or false")
        nl = t.get("nl", t["id"])
        topics.append(Topic(t["id"], nl, t.get("en", nl), crisis))
    if len({t.id for t in topics}) != len(topics):
        raise ValueError("[[topics]] ids must be unique")
    return tuple(topics) or DEFAULT_TOPICS
