"""The fast normalise and analyse give exactly what the plain step-by-step versions give.

``reference_normalise`` is :func:`moderation.normalise.normalise` as it was before its steps
were made conditional: every step runs on every text. ``reference_analyse`` feeds it to the
exhaustive (``prefilter=False``) rules, which run every pattern.
"""

from __future__ import annotations

import random
import re
import sys
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.moderation_eval import load_abuse, load_crisis
from moderation import TextAnalysis, analyse, crisis
from moderation.abuse import is_abusive_normalised
from moderation.normalise import CHAT_WORDS, KEY_WORDS, normalise
from moderation.pii import pii_kinds

_LEET = str.maketrans({"0": "o", "3": "e", "1": "i", "4": "a", "$": "s", "@": "a", "7": "t"})
_REPEATS = re.compile(r"(.)\1{2,}")
_APOSTROPHES = re.compile(r"[’‘`´]")
_SPACE = re.compile(r"\s+")
_WORD_DIGITS = re.compile(r"(?<=[a-z])[0134$@7]+|[0134$@7]+(?=[a-z])")
_WORD = re.compile(r"[a-z']+")
_TE_INFINITIVE = re.compile(r"\bte (?=[a-z]+en\b)")
_DT = re.compile(r"(?<=[a-z])dt\b")


def _reference_one_edit_apart(a: str, b: str) -> bool:
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


def _reference_fold_word(word: str) -> str:
    if word in CHAT_WORDS:
        return CHAT_WORDS[word]
    if len(word) >= 6:
        for key in KEY_WORDS:
            if word[0] == key[0] and _reference_one_edit_apart(word, key):
                return key
    return word


def reference_normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    low = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    low = _APOSTROPHES.sub("'", low)
    low = _WORD_DIGITS.sub(lambda m: m.group(0).translate(_LEET), low)
    low = _REPEATS.sub(r"\1\1", low)
    low = _WORD.sub(lambda m: _reference_fold_word(m.group(0)), low)
    low = _DT.sub("d", low)
    low = _TE_INFINITIVE.sub("", low)
    return _SPACE.sub(" ", low).strip()


def reference_analyse(text: str) -> TextAnalysis:
    norm = reference_normalise(text)
    found = crisis.detect_normalised(norm, prefilter=False)
    return TextAnalysis(
        found.crisis,
        found.categories,
        is_abusive_normalised(norm, prefilter=False),
        pii_kinds(text, prefilter=False),
    )


SENTENCES = [text for _, _, text in load_crisis() + load_abuse()]
ODD_SPACES = ["\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85"]
ODD_SPACES += ["\xa0", "\u1680", "\u2000", "\u2009", "\u200b", "\u2028", "\u2029", "\u3000"]
ACCENTED = {"e": "éëèÉ", "i": "ïí", "o": "öó", "a": "äáÅ", "u": "üú", "n": "ñ", "c": "ç"}
LEET = {"o": "0", "e": "3", "i": "1", "a": "4@", "s": "$", "t": "7"}
APOSTROPHES = ["'", "’", "‘", "`", "´"]
#: Characters that NFKD turns into ASCII letters, digits or spaces (ligatures, full width).
COMPAT = ["ﬁ", "ﬂ", "Ｋ", "ｚ", "１", "０", "²", "ⅰ", "\u0301", "\u0308", "ß", "İ", "ﬀ"]


def _misspellings(word: str, rng: random.Random) -> list[str]:
    i = rng.randrange(len(word))
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz'")
    out = [
        word[:i] + word[i + 1 :],
        word[:i] + letter + word[i:],
        word[:i] + letter + word[i + 1 :],
    ]
    if i + 1 < len(word):
        out.append(word[:i] + word[i + 1] + word[i] + word[i + 2 :])
    out.append(word[:i] + letter + letter + word[i + 1 :])  # two edits: not folded
    return out


def _variants(text: str, rng: random.Random) -> list[str]:
    chars = list(text)
    out = [text, text.upper(), text.title()]
    out.append("".join(LEET[c][0] if c in LEET and rng.random() < 0.5 else c for c in chars))
    out.append("".join(rng.choice(ACCENTED[c]) if c in ACCENTED else c for c in chars))
    out.append("".join(c * rng.randint(3, 6) if rng.random() < 0.2 else c for c in chars))
    out.append(
        "".join(rng.choice(ODD_SPACES) * rng.randint(1, 3) if c == " " else c for c in chars)
    )
    out.append(rng.choice(ODD_SPACES) + text + rng.choice(ODD_SPACES))
    out.append(text.replace("'", rng.choice(APOSTROPHES)))
    words = text.split()
    slot = rng.randrange(len(words) + 1)
    chat = rng.choice([*CHAT_WORDS, *(w.upper() for w in CHAT_WORDS)])
    key = rng.choice(KEY_WORDS)
    for word in [chat, *_misspellings(key, rng), rng.choice(COMPAT) + key]:
        out.append(" ".join([*words[:slot], word, *words[slot:]]))
    out.append(text.replace("d ", "dt ").replace("en ", "te en "))
    out.append("".join(c + rng.choice(COMPAT) if rng.random() < 0.1 else c for c in chars))
    return out


def test_whitespace_of_the_regex_is_the_whitespace_of_str_split() -> None:
    """For every code point, re's \\s and str.split() agree on whether it is whitespace."""
    space = re.compile(r"\s")
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        splits = len(f"a{ch}b".split()) == 2
        assert bool(space.fullmatch(ch)) == splits == ch.isspace(), hex(code)


def test_every_labelled_sentence_and_its_variants_normalise_as_before() -> None:
    """On every labelled sentence and its spelling variants normalise equals the reference."""
    rng = random.Random(20240611)
    checked = 0
    for text in SENTENCES:
        for variant in _variants(text, rng):
            assert normalise(variant) == reference_normalise(variant), repr(variant)
            checked += 1
    assert checked > 10 * len(SENTENCES)


def test_every_labelled_sentence_and_its_variants_analyse_as_before() -> None:
    """On every labelled sentence and its variants analyse equals the exhaustive reference."""
    rng = random.Random(7)
    for text in SENTENCES:
        for variant in _variants(text, rng):
            assert analyse(variant) == reference_analyse(variant), repr(variant)


def test_each_key_word_and_its_one_letter_misspellings_fold_as_before() -> None:
    """Every single deletion, insertion, substitution and swap of a key word folds the same."""
    for key in KEY_WORDS:
        forms = {key, key + "s", "x" + key}
        for i in range(len(key) + 1):
            forms.add(key[:i] + key[i + 1 :])
            forms.add(key[:i] + key[i + 2 :])
            forms.add(key[:i] + key[i + 1 : i + 2] + key[i : i + 1] + key[i + 2 :])
            for letter in "aeiouzst'":
                forms.add(key[:i] + letter + key[i:])
                forms.add(key[:i] + letter + key[i + 1 :])
        for form in forms:
            for text in (form, f"ik {form} nu", f"{form}'s", f"{form}1", f"a{form}", form.upper()):
                assert normalise(text) == reference_normalise(text), text


_PIECE = st.one_of(
    st.sampled_from(SENTENCES),
    st.sampled_from(sorted(CHAT_WORDS) + list(KEY_WORDS)),
    st.sampled_from(ODD_SPACES + APOSTROPHES + COMPAT + ["dt", "te ", "en", "!!!", "ooo"]),
    st.text(alphabet="abdeiklmnorstuvzAEKZ' 0134$@7éëï’`\n\x1c\x85\u3000", max_size=14),
    st.text(max_size=6),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECE, min_size=1, max_size=5).map("".join))
def test_generated_texts_normalise_and_analyse_as_before(text: str) -> None:
    """On random mixes of sentences, chat and key words, digits, accents and odd spaces the
    fast normalise and analyse equal the references."""
    assert normalise(text) == reference_normalise(text)
    assert analyse(text) == reference_analyse(text)
