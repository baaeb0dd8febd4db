"""TEMPORARY stub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Topic:
    id: str
    label_nl: str
    label_en: str


DEFAULT_TOPICS = (Topic("school", "School", "School"), Topic("thuis", "Thuis", "Home"))


def topics_for(configured: Any) -> tuple[Topic, ...]:
    return DEFAULT_TOPICS
