"""Friendly nickname suggestions that pass the rules (pure: the caller passes the RNG)."""

from __future__ import annotations

import random

from nickname.rules import validate

WORDS = {
    "nl": (
        (
            "Blauwe",
            "Rustige",
            "Vrolijke",
            "Dappere",
            "Zachte",
            "Snelle",
            "Stille",
            "Wijze",
            "Gouden",
            "Groene",
            "Lieve",
            "Slimme",
            "Warme",
            "Zonnige",
            "Kleine",
            "Sterke",
        ),
        (
            "Vos",
            "Uil",
            "Otter",
            "Panda",
            "Egel",
            "Dolfijn",
            "Wolk",
            "Ster",
            "Beer",
            "Vlinder",
            "Zeehond",
            "Merel",
            "Maan",
            "Boom",
            "Golf",
            "Haas",
        ),
    ),
    "en": (
        (
            "Blue",
            "Calm",
            "Happy",
            "Brave",
            "Gentle",
            "Swift",
            "Quiet",
            "Wise",
            "Golden",
            "Green",
            "Kind",
            "Clever",
            "Warm",
            "Sunny",
            "Little",
            "Strong",
        ),
        (
            "Fox",
            "Owl",
            "Otter",
            "Panda",
            "Hedgehog",
            "Dolphin",
            "Cloud",
            "Star",
            "Bear",
            "Butterfly",
            "Seal",
            "Robin",
            "Moon",
            "Tree",
            "Wave",
            "Hare",
        ),
    ),
}


def suggest(rng: random.Random, lang: str = "nl") -> str:
    adjectives, nouns = WORDS.get(lang, WORDS["nl"])
    name = f"{rng.choice(adjectives)}{rng.choice(nouns)}{rng.randint(1, 99)}"
    return validate(name, lang)


def suggestions(rng: random.Random, n: int, lang: str = "nl") -> list[str]:
    return [suggest(rng, lang) for _ in range(n)]
