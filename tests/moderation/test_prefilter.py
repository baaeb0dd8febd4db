"""The prefilter skips only patterns that cannot match: analyse gives what the exhaustive path gives."""

from __future__ import annotations

import re

import phonenumbers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.moderation_eval import load_abuse, load_crisis
from moderation import abuse, analyse, crisis, pii
from moderation.normalise import normalise
from moderation.prefilter import PatternSet, Scan, required_literals

SENTENCES = [text for _, _, text in load_crisis() + load_abuse()]
WORDS = sorted({w for text in SENTENCES for w in text.split()})
PATTERN_SETS = [crisis._IDIOM_SET, crisis._SIGNAL_SET, abuse._ABUSE_SET]


def test_every_labelled_sentence_gets_the_exhaustive_result() -> None:
    """On every sentence of every labelled set analyse equals analyse(prefilter=False)."""
    for text in SENTENCES:
        assert analyse(text) == analyse(text, prefilter=False), text


def test_pii_examples_get_the_exhaustive_result() -> None:
    """Texts with personal data or near misses get the same kinds with and without prefilter."""
    texts = [
        "bel 0612345678",
        "+290 1234",
        "12345",
        "bel 0800 1234",
        "NL91ABNA0417164300",
        "1234 AB 5",
        "mail a@b.nl",
        "http://x",
        "zie example.nl",
        "+31 6 12345678 en www.x.nl",
    ]
    for text in texts:
        assert pii.find_pii(text) == pii.find_pii(text, prefilter=False), text


_PIECE = st.one_of(
    st.sampled_from(SENTENCES),
    st.sampled_from(WORDS),
    st.from_regex(r"[+]?[0-9 ()-]{1,14}", fullmatch=True),
    st.sampled_from([".", ",", "!", "?", " ", "@", "://", "www.", ".nl", " en ", " maar "]),
    st.text(alphabet="abcdeijklmnoprstuvwyz' 013@$", max_size=12),
)


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECE, min_size=1, max_size=5).map(" ".join))
def test_generated_mixes_get_the_exhaustive_result(text: str) -> None:
    """On random mixes of labelled sentences, words, digits and punctuation the results agree."""
    assert analyse(text) == analyse(text, prefilter=False)


def test_every_match_contains_its_required_literals() -> None:
    """Every match of every pattern in a labelled sentence contains a literal of each set."""
    texts = [normalise(t) for t in SENTENCES]
    texts += [crisis._IDIOMS.sub(" ", t) for t in texts]
    checked = 0
    for pattern_set in PATTERN_SETS:
        for patterns in pattern_set.patterns.values():
            for source in patterns:
                required = required_literals(source)
                compiled = re.compile(source)
                for text in texts:
                    for match in compiled.finditer(text):
                        checked += 1
                        for literals in required:
                            assert any(w in match.group(0) for w in literals), (source, text)
    assert checked > 500


def test_required_literals_of_a_pattern() -> None:
    """An optional group and a repeat leave the literals every match passes through."""
    required = required_literals(r"\bwil(le)? (\w+ ){0,2}dood\b")
    assert frozenset({"dood"}) in required
    assert frozenset({"wil ", "wille "}) in required
    assert required_literals(r"\w+") == []


def test_a_pattern_set_keeps_only_possible_patterns() -> None:
    """A group's reduced alternation drops the patterns whose literals are absent."""
    group = PatternSet({"g": ["zelfmoord", r"wil (\w+ )?dood", r"\w+x"]})
    text = "ik wil echt dood"
    assert group.possible("g", group.present(text)) == (1, 2)
    assert group.regex("g", group.present("zelfmoord")) is not None
    assert group.regex("g", group.present("")) is not None  # "\w+x" requires nothing
    only = PatternSet({"g": ["zelfmoord"]})
    assert only.regex("g", only.present("niets")) is None


def test_phone_digit_threshold_is_below_every_valid_number() -> None:
    """No valid number, national (NL) or international, has fewer digits than the threshold."""
    shortest = min(
        phonenumbers.PhoneMetadata.metadata_for_region("NL").general_desc.possible_length
    )
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
            if meta is None or meta.general_desc is None:
                continue
            lengths = [n for n in meta.general_desc.possible_length if n > 0]
            if lengths:
                shortest = min(shortest, len(str(code)) + min(lengths))
    assert shortest >= pii.PHONE_MIN_DIGITS


def test_phone_numbers_split_by_words_are_looked_at_like_the_matcher_does() -> None:
    """Numbers with odd separators, extensions and full-width digits agree with the matcher."""
    texts = [
        "ik ben 15 jaar, om 16:30 thuis",
        "bel 06 x 12345678",
        "06-1234 5678 toestel 12",
        "020 1234567 ext. 12",
        "(020) 123 4567",
        "＋３１ ６ １２３４５６７８",
        "06/12.34.56.78",
        "0612345 678 ja 12 34",
        "ik woon op 12 en 345 en 67",
    ]
    for text in texts:
        assert pii.find_pii(text) == pii.find_pii(text, prefilter=False), text


def test_one_scan_finds_what_each_pattern_set_finds() -> None:
    """Scan over several pattern sets gives, per set, exactly that set's own present()."""
    scan = Scan(PATTERN_SETS)
    texts = [normalise(t) for t in SENTENCES]
    texts += [crisis._IDIOMS.sub(" ", t) for t in texts] + WORDS + ["", "zelfmoordpreventie"]
    for text in texts:
        assert scan.present(text) == tuple(s.present(text) for s in PATTERN_SETS), text


def test_possible_and_regex_depend_only_on_the_relevant_literals() -> None:
    """A group's possible() and regex() are the same with all literals or only its own."""
    for pattern_set in PATTERN_SETS:
        for text in SENTENCES[::7]:
            present = pattern_set.present(normalise(text))
            for name in pattern_set.patterns:
                own = present & pattern_set.relevant[name]
                assert pattern_set.possible(name, present) == pattern_set._possible_uncached(
                    name, own
                )
                assert pattern_set.possible(name, present) == pattern_set._possible_uncached(
                    name, present
                )


def test_a_signal_that_taking_out_an_idiom_joins_together_is_seen() -> None:
    """Text left after taking out an idiom or a "not danger" phrase is scanned again."""
    for text in ["ik wil nietga dood van het lachenmeer", "ik wil nietnot safe drivingmeer"]:
        assert analyse(text) == analyse(text, prefilter=False)
        assert analyse(text).crisis_categories == ("suicide",)


_LITERALS = sorted({w for s in PATTERN_SETS for w in s.triggers.words})
_SCAN = Scan(PATTERN_SETS)


def _by_search(pattern_set: PatternSet, text: str) -> int:
    """The literals in ``text``, each looked for on its own (``in``): the plain definition."""
    return sum(1 << i for i, w in enumerate(pattern_set.triggers.words) if w in text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(_LITERALS), _PIECE), min_size=1, max_size=6))
def test_the_scan_finds_every_literal_each_search_finds(pieces: list[str]) -> None:
    """One pass of the automaton finds exactly the literals that a search for each one finds,
    for every pattern set, alone and scanned together (overlapping and nested ones too)."""
    text = normalise(" ".join(pieces)) + "".join(pieces)  # pieces side by side, too
    expected = [_by_search(s, text) for s in PATTERN_SETS]
    assert [s.present(text) for s in PATTERN_SETS] == expected
    assert list(_SCAN.present(text)) == expected
