"""Text as the rules read it: lower case, no accents, chat spelling and common misspellings undone.

:func:`normalise` is what the crisis and abuse patterns are written against. Besides case and
accents it folds the variation that young people's chat text has and that would otherwise need
every pattern written many times:

* leetspeak and stretched letters: ``"d00d"`` → ``"dood"``, ``"doooood"`` → ``"dood"``;
* chat words: ``"k wil nie meer"`` → ``"ik wil niet meer"``, ``"wanna"`` → ``"want to"``;
* the Dutch d/dt mistake: a word ending in ``dt`` is written with ``d`` (``"vermoordt"`` and
  ``"vermoord"`` read the same), so patterns are written with ``d`` (:func:`pattern_form`);
* the Dutch ``te`` infinitive: ``"op te hangen"`` → ``"op hangen"``, ``"van kant te maken"`` →
  ``"van kant maken"``, so one pattern ``op ?hangen`` covers ``ophangen``, ``hang ... op`` aside;
* a misspelt key word (one letter wrong, missing, extra or swapped): ``"zelmoord"``,
  ``"zelfmord"``, ``"sucide"`` → the word itself.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_LEET = str.maketrans({"0": "o", "3": "e", "1": "i", "4": "a", "$": "s", "@": "a", "7": "t"})
_REPEATS = re.compile(r"(.)\1{2,}")
_APOSTROPHES = re.compile(r"[’‘`´]")
_SPACE = re.compile(r"\s+")
_WORD_DIGITS = re.compile(r"(?<=[a-z])[0134$@7]+|[0134$@7]+(?=[a-z])")
_WORD = re.compile(r"[a-z']+")
#: Quick tests for whether a step of :func:`normalise` can change the text at all.
_ANY_LEET = re.compile(r"[0134$@7]")
_TRIPLE = re.compile(r"([^\n])\1\1")  # matches exactly where _REPEATS does

#: Chat spelling → the written word (whole words only).
CHAT_WORDS = {
    "k": "ik",
    "ikke": "ik",
    "nie": "niet",
    "mn": "mijn",
    "m'n": "mijn",
    "z'n": "zijn",
    "zn": "zijn",
    "wil'k": "wil ik",
    "wilk": "wil ik",
    "ff": "even",
    "leve": "leven",
    "mss": "misschien",
    "wnt": "want",
    "ur": "your",
    "r": "are",
    "im": "i'm",
    "ive": "i've",
    "dont": "don't",
    "cant": "can't",
    "wont": "won't",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "isnt": "isn't",
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "rn": "right now",
    "2nite": "tonight",
    "cuz": "because",
    "bc": "because",
    "pls": "please",
}

#: Key words whose misspellings are folded back (only words of 6 letters or more, so no
#: ordinary word is one typo away).
KEY_WORDS = (
    "zelfmoord",
    "suicide",
    "suicidal",
    "suicidaal",
    "overdosis",
    "overdose",
    "afscheidsbrief",
    "zelfbeschadiging",
    "automutilatie",
    "verkracht",
    "misbruikt",
    "mishandeld",
)

_TE_INFINITIVE = re.compile(r"\bte (?=[a-z]+en\b)")
_DT = re.compile(r"(?<=[a-z])dt\b")


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _one_edit_apart(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by one insertion, deletion, substitution or swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    if a[i + 1 :] == b[i + 1 :]:
        return True
    return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]


def _fold_word(word: str) -> str:
    if word in CHAT_WORDS:
        return CHAT_WORDS[word]
    if len(word) >= 6:
        for key in KEY_WORDS:
            if word[0] == key[0] and _one_edit_apart(word, key):
                return key
    return word


_fold_cached = lru_cache(maxsize=4096)(_fold_word)


def _foldable_words() -> re.Pattern[str]:
    """The whole ``[a-z']+`` words that :func:`_fold_word` can change: a chat word, or a word
    one edit from a key word (its first letter, 6 letters or more, at most one longer). Any
    other word is its own fold, so leaving it alone changes nothing."""
    chat = sorted((w for w in CHAT_WORDS if _WORD.fullmatch(w)), key=lambda w: (-len(w), w))
    firsts = "".join(sorted({key[0] for key in KEY_WORDS}))
    longest = max(len(key) for key in KEY_WORDS) + 1
    near_key = f"[{firsts}][a-z']{{5,{longest - 1}}}"
    words = "|".join([*map(re.escape, chat), near_key])
    return re.compile(f"(?<![a-z'])(?:{words})(?![a-z'])")


_FOLDABLE = _foldable_words()


def _fold_match(match: re.Match[str]) -> str:
    return _fold_cached(match.group(0))


def _leet_match(match: re.Match[str]) -> str:
    return match.group(0).translate(_LEET)


def pattern_form(pattern: str) -> str:
    """A pattern written in ordinary spelling, in the form :func:`normalise` produces:
    ``"vermoordt"`` → ``"vermoord"``."""
    return re.sub(r"(?<=[a-z])dt(?![a-z])", "d", pattern)


def normalise(text: str) -> str:
    """``"Ik wil DOOOOD!!"`` → ``"ik wil dood!!"``; ``"d00d"`` → ``"dood"``; ``"don’t"`` →
    ``"don't"``; ``"k denk erover om mezelf op te hangen"`` → ``"ik denk erover om mezelf op
    hangen"``. Digits inside words become letters (leetspeak); other numbers stay."""
    # Each step is skipped when it cannot change the text; the result is what running every
    # step gives (tests/moderation/test_normalise_reference.py keeps the plain version).
    low = text.casefold()
    if not low.isascii():  # NFKD leaves ASCII as it is, and ASCII has no combining marks
        low = strip_accents(low)
        low = _APOSTROPHES.sub("'", low)
    elif "`" in low:  # the one ASCII character among the apostrophes
        low = _APOSTROPHES.sub("'", low)
    if _ANY_LEET.search(low):
        low = _WORD_DIGITS.sub(_leet_match, low)
    if _TRIPLE.search(low):
        low = _REPEATS.sub(r"\1\1", low)
    low = _FOLDABLE.sub(_fold_match, low)
    if "dt" in low:
        low = _DT.sub("d", low)
    if "te " in low:
        low = _TE_INFINITIVE.sub("", low)
    # str.split() splits at exactly the characters \s matches (both use str.isspace)
    return " ".join(low.split())
