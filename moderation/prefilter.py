"""Cheap preconditions for the moderation patterns: which literal text a match must contain.

Most messages trigger nothing, yet scanning a normalised message with every crisis and abuse
pattern costs hundreds of microseconds. Each pattern is read once, at import, with the regex
parser, and reduced to its *required literals*: a few sets of strings, such that every match
of the pattern contains at least one string of each set (``\\bwil(le)? (\\w+ ){0,2}dood\\b``
needs one of ``{"wil ", "wille "}`` and ``{"dood"}``). This is proved by construction: a
literal only enters a set through a sequence of pattern items that every match passes through
in order, so a message that lacks one of the sets cannot match; the pattern is then skipped,
which changes no result. A pattern with nothing certain to require is never skipped.

:class:`PatternSet` holds named groups of patterns; :meth:`PatternSet.present` finds, in one
pass over a message, which literals occur in it, and :meth:`PatternSet.regex` gives a group's
patterns joined as one alternation with only the patterns that can still match (``None`` when
none can). Dropping an alternative that cannot match anywhere in the text changes neither which
alternative wins at a position nor where matches start and end, so ``search``, ``finditer``
and ``sub`` give what the whole alternation gives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from re import _constants as _c  # type: ignore[attr-defined]
from re import _parser as _p  # type: ignore[attr-defined]
from typing import Any

import ahocorasick

#: Largest set of strings followed through a run of pattern items before it is cut.
_LIMIT = 256

Strings = frozenset[str]
#: (every string the item can match, if few; sets of which a match contains one string each)
_Facts = tuple[Strings | None, list[Strings]]


def _item(op: Any, av: Any) -> _Facts:
    if op is _c.LITERAL:
        return frozenset({chr(av)}), []
    if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
        return frozenset({""}), []  # zero width: the consumed text stays contiguous
    if op is _c.IN:
        return _char_set(av), []
    if op is _c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        return (None, []) if add_flags or del_flags else _sequence(sub)
    if op is _c.BRANCH:
        return _branch(av[1])
    if op in _REPEATS:
        return _repeat(*av)
    return None, []


_REPEATS = tuple(
    op for op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)) if op
)


def _char_set(members: Any) -> Strings | None:
    """``[- ]``: the characters of a class of plain characters (no ranges, no negation)."""
    chars = set()
    for kind, value in members:
        if kind is not _c.LITERAL:
            return None
        chars.add(chr(value))
    return frozenset(chars)


def _branch(alternatives: Any) -> _Facts:
    branches = [_sequence(b) for b in alternatives]
    exact: Strings | None = None
    if all(e is not None for e, _ in branches):
        every = frozenset().union(*(e or frozenset() for e, _ in branches))
        exact = every if len(every) <= _LIMIT else None
    # every match passes through one branch, so it contains one of the branches' best sets
    union: set[str] = set()
    for e, cands in branches:
        choice = _best(cands + ([e] if e is not None else []))
        if choice is None:
            return exact, []
        union |= choice
    return exact, [frozenset(union)]


def _repeat(low: int, high: int, sub: Any) -> _Facts:
    exact, cands = _sequence(sub)
    if low == 0:
        if high == 1 and exact is not None:
            return exact | {""}, []
        return None, []
    if low == high == 1:
        return exact, cands
    return None, cands + ([exact] if exact is not None else [])


def _sequence(items: Any) -> _Facts:
    run: Strings = frozenset({""})
    cands: list[Strings] = []
    whole = True
    for op, av in items:
        exact, inner = _item(op, av)
        cands.extend(inner)
        if exact is None:
            cands.append(run)
            run, whole = frozenset({""}), False
            continue
        joined = frozenset(a + b for a in run for b in exact)
        if len(joined) > _LIMIT:
            cands.append(run)
            run, whole = exact, False
        else:
            run = joined
    cands.append(run)
    return (run if whole else None), cands


def _best(cands: Sequence[Strings]) -> Strings | None:
    """The most selective useful set: longest shortest string, then fewest strings."""
    useful = [c for c in cands if c and "" not in c]
    if not useful:
        return None
    return max(useful, key=lambda c: (min(len(s) for s in c), -len(c)))


def required_literals(pattern: str) -> list[Strings]:
    """Sets of strings of which every match of ``pattern`` contains one string each (the
    three most selective; none when the pattern requires nothing certain)."""
    parsed = _p.parse(pattern, 0)
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return []
    _exact, cands = _sequence(parsed)
    useful = {c for c in cands if c and "" not in c and min(len(s) for s in c) >= 2}
    ranked = sorted(useful, key=lambda c: (-min(len(s) for s in c), len(c), sorted(c)))
    return ranked[:3]


class Triggers:
    """Which of a list of patterns can match a text, judged by their required literals."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.requirements = [required_literals(p) for p in patterns]
        self.words = words = sorted({w for req in self.requirements for cand in req for w in cand})
        self._bit = bit = {w: 1 << i for i, w in enumerate(words)}
        #: a literal found at a position implies every literal that is a prefix of it
        self._implies = {w: self.implied(w) for w in words}
        self._masks = [[sum(bit[w] for w in cand) for cand in req] for req in self.requirements]
        self._scan = _automaton(words, self._implies)

    def implied(self, found: str) -> int:
        """The literals that occur where ``found`` (any string) occurs: its prefixes."""
        bit = self._bit
        return sum(bit.get(found[:end], 0) for end in range(1, len(found) + 1))

    def relevant(self, indices: Sequence[int]) -> int:
        """Every literal that :meth:`possible` looks at for ``indices``."""
        mask = 0
        for i in indices:
            for m in self._masks[i]:
                mask |= m
        return mask

    def present(self, text: str) -> int:
        """A bit mask of the literals that occur in ``text``."""
        if self._scan is None:
            return 0
        found = 0
        for _end, implied in self._scan.iter(text):
            found |= implied
        return found

    def union(self, indices: Sequence[int]) -> int | None:
        """Literals of which one must be present for any of ``indices`` to match (``None``
        when one of those patterns requires nothing)."""
        union = 0
        for i in indices:
            if not self._masks[i]:
                return None
            union |= self._masks[i][0]
        return union

    def possible(self, present: int, indices: Sequence[int]) -> tuple[int, ...]:
        """Those of ``indices`` whose pattern can match a text with these literals."""
        masks = self._masks
        return tuple(i for i in indices if all(m & present for m in masks[i]))


def _automaton(words: Sequence[str], implies: Mapping[str, int]) -> Any:
    """An Aho-Corasick automaton (pyahocorasick) over ``words``: one pass over a text gives
    every occurrence of every word, each with the mask of what it implies (itself and those
    of the words that are its prefixes, which occur at the same place)."""
    if not words:
        return None
    automaton = ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word, implies[word])
    automaton.make_automaton()
    return automaton


class Scan:
    """:meth:`PatternSet.present` for several pattern sets in one pass over the text."""

    def __init__(self, sets: Sequence[PatternSet]) -> None:
        triggers = [s.triggers for s in sets]
        words = sorted({w for t in triggers for w in t.words})
        #: each set's bits side by side in one int: set k's mask is (joined >> shift) & width
        self._layout: list[tuple[int, int]] = []
        shift = 0
        for t in triggers:
            self._layout.append((shift, (1 << len(t.words)) - 1))
            shift += len(t.words)
        self._implies = {
            w: sum(t.implied(w) << at for t, (at, _) in zip(triggers, self._layout, strict=True))
            for w in words
        }
        self._none = (0,) * len(sets)
        self._scan = _automaton(words, self._implies)

    def present(self, text: str) -> tuple[int, ...]:
        """For each set, what its :meth:`PatternSet.present` gives for ``text``."""
        if self._scan is None:
            return self._none
        joined = 0
        for _end, implied in self._scan.iter(text):
            joined |= implied
        if not joined:
            return self._none
        return tuple((joined >> at) & width for at, width in self._layout)


def alternation(patterns: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


class PatternSet:
    """Named groups of patterns (already in :func:`~moderation.normalise.pattern_form`)."""

    def __init__(self, groups: Mapping[str, Sequence[str]]) -> None:
        flat = [p for patterns in groups.values() for p in patterns]
        self.triggers = Triggers(flat)
        self.patterns = {name: tuple(patterns) for name, patterns in groups.items()}
        self._indices: dict[str, range] = {}
        start = 0
        for name, patterns in groups.items():
            self._indices[name] = range(start, start + len(patterns))
            start += len(patterns)
        self._union = {name: self.triggers.union(r) for name, r in self._indices.items()}
        self.full = {name: alternation(p) for name, p in self.patterns.items()}
        #: what possible() and regex() give depends only on these bits of ``present``
        self.relevant = {name: self.triggers.relevant(r) for name, r in self._indices.items()}
        self._reduced = lru_cache(maxsize=2048)(self._compile)
        self._possible = lru_cache(maxsize=4096)(self._possible_uncached)
        self._regex = lru_cache(maxsize=4096)(self._regex_uncached)

    def present(self, text: str) -> int:
        return self.triggers.present(text)

    def possible(self, name: str, present: int) -> tuple[int, ...]:
        """Positions (within the group) of the patterns that can match."""
        return self._possible(name, present & self.relevant[name])

    def regex(self, name: str, present: int) -> re.Pattern[str] | None:
        """The group's alternation without the patterns that cannot match; ``None`` if empty."""
        return self._regex(name, present & self.relevant[name])

    def _possible_uncached(self, name: str, present: int) -> tuple[int, ...]:
        union = self._union[name]
        if union is not None and not union & present:
            return ()
        indices = self._indices[name]
        return tuple(i - indices.start for i in self.triggers.possible(present, indices))

    def _regex_uncached(self, name: str, present: int) -> re.Pattern[str] | None:
        which = self.possible(name, present)
        if not which:
            return None
        if len(which) == len(self.patterns[name]):
            return self.full[name]
        return self._reduced(name, which)

    def _compile(self, name: str, which: tuple[int, ...]) -> re.Pattern[str]:
        patterns = self.patterns[name]
        return alternation([patterns[i] for i in which])
