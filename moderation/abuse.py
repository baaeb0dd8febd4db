"""Abusive or threatening text aimed at the counsellor: flagged for them, never hidden.

What counts as abuse here (and how ``tests/moderation/data/abuse_labelled.tsv`` is labelled):

* an insult aimed at the person on the other side: "je bent een idioot", "you stupid bitch",
  a bare "vuile teringlijer" (a message or clause that is nothing but an insult is aimed at
  the reader), "je moeder is een hoer", "jullie zijn allemaal idioten";
* a command to go away or die: "hou je bek", "rot op", "ga toch dood", "kys", "go to hell";
* a threat: "ik maak je af", "ik kom je halen", "i know where you live", "i'll find you";
* sexual harassment: "stuur nudes", "wat heb je aan", "wil je met me naar bed".

Not abuse: swearing about one's own life ("kut school", "fuck my life"), hating oneself,
insulting a third party ("die leraar is een idioot", "mijn broer is zo'n loser": venting,
which a counsellor wants to hear), reporting what others said ("hij zei dat ik een hoer ben"),
game talk ("ik ga je killen in fortnite") and "ik ga dood (van het lachen)" (the crisis rules
judge that one). Threats against someone else are not flagged as abuse either; the crisis rules
look at danger.

The excuses are scoped to a clause (cut at punctuation and at "maar", "en", "but", "and"):
reported speech excuses an insult or command in its own clause, and in the clause before
when it is the inquit ("rot op, zei mijn moeder"); a game word excuses an insult, a command
or a threat of play ("i'll kill you in fortnite") in its own clause. Nothing excuses the
other threats ("ik weet waar je woont, game over") or sexual harassment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache, reduce
from operator import or_

from moderation.normalise import normalise, pattern_form
from moderation.prefilter import PatternSet, Scan

_INSULT_NOUNS = (
    r"(kanker|tyfus|tering|kut)?(hoer|slet|trut|kutwijf|wijf|mongool|mongol|idioot|idioten|debiel"
    r"|debielen|klootzak|klootzakken|eikel|lul|sukkel|loser|losers|pedo|flikker|lijer|lijers"
    r"|mongolen|bitch|whore|slut|retard|cunt|moron|morons|idiot|idiots|asshole|dickhead"
    r"|dumbass|twat|bastard|prick|wanker|piece of shit|freak|stoephoer|nutcase)"
)
_INSULT_ADJ = (
    r"(domme|stomme|vieze|vuile|nutteloze|waardeloze|kanker|kut|fucking|stupid|dumb|useless"
    r"|worthless|ugly|lelijke|dikke|fat|little|filthy|pathetic|zielige|achterlijke|retarded"
    r"|gestoorde|debiele|gore|smerige|vette|fucked up)"
)
_INSULT_WORD = rf"\b({_INSULT_ADJ} )*{_INSULT_NOUNS}\b"
_YOU_ARE = (
    r"\b(je bent|jij bent|ben jij|ben je|bent u|u bent|you are|you're|ur|jullie (\w+ ){0,2}zijn"
    r"|you (people|guys|all) are)"
)
#: "jij kankermongool", "you stupid bitch", "shut up you moron": a vocative insult
_YOU = r"\b(jij|you|jullie|your|ur)"
_DEGREE = r"((echt|zo|zo'n|een|such|so|a|an|really|totally|just|all|allemaal|gewoon) )*"

#: An insult aimed at the reader.
INSULTS = [
    rf"{_YOU_ARE} (\w+ )?{_DEGREE}({_INSULT_ADJ} )*{_INSULT_NOUNS}\b",
    rf"{_YOU} ({_INSULT_ADJ} )*{_INSULT_NOUNS}\b",
    rf"{_YOU_ARE} {_DEGREE}(dom|stom|lelijk|achterlijk|gestoord|stupid|dumb|useless|worthless"
    r"|pathetic|disgusting|walgelijk|nutteloos|waardeloos)\b",
    rf"\b(je|jouw|your|ur) (moeder|mama|ma|mom|mum|mother|zus|sister)\b[^.!?]{{0,20}}"
    rf"{_INSULT_NOUNS}",
]
#: Commands: go away, shut up, die.
COMMANDS = [
    r"\b(hou|houd) (toch |nou |gewoon )?(je|jij|jouw) (grote |vuile |vieze )?(bek|kop|smoel"
    r"|mond dicht|waffel)\b",
    r"\b(shut up|stfu|shut the fuck up)\b|\bshut your (mouth|face|trap)\b",
    r"\bkrijg (de|het|een) (tering|kanker|tyfus|pest|klere|pleuris)\b",
    r"\b(ga|go) (\w+ )?(fuck|kill|hang) yourself\b|\bga (toch )?jezelf (\w+ )?(op ?hangen|doden"
    r"|vermoorden|iets aan ?doen)",
    r"\b(rot|flikker|kanker|tyf|tering|donder|sodemieter)( toch| maar)? op\b",
    r"\b(fuck|fck|screw|sod) (you|u|jou|off)\b",
    r"\bgo to hell\b|\bloop naar de hel\b",
    r"(^|[^k] |[,.!?] )ga (toch |maar |lekker |gewoon )?dood\b(?! (van|als|aan)\b)",
    r"^(sterf|creperen|crepeer)\b|^die$",
    r"\b(kys|kill yourself|go die|neck yourself|hang yourself)\b",
    r"\b(i hope|hope|ik hoop dat) (you|je|jij) (\w+ )?(die|dies"
    r"|doodgaat|dood gaat|sterft|creperen)",
]
#: Threats of violence that are also how players talk: "ik maak je af", "i'll kill you".
THREATS_IN_PLAY = [
    r"\b(i|i'll|i will|i'm|i am)( going to)? (kill|find|hurt|stab|get|shoot|rape|beat|murder)"
    r" you\b",
    r"\b(ik|i)('ll| will| zal| ga| am going to|'m going to|'m| kom)? (je|jou|you) (\w+ )?"
    r"(vermoorden|vermoord|af ?maken|maak \w*|neer ?steken|steek|kapot ?maken|pakken|vinden"
    r"|halen|slaan|sla|dood ?maken|dood|verkrachten|kill|find|hurt|stab|get|shoot|rape|beat"
    r"|murder|end)\b",
    r"\bik maak (je|jou) af\b|\bik steek (je|jou) neer\b",
]
#: Threats no game explains: knowing where someone lives, coming to get them.
THREATS = [
    r"\bik kom (je|jou) halen\b",
    r"\b(ik weet|ik vind|i know) (waar|where) (je|jij|you) (woont|werkt|zit|live|work|are)\b",
    r"\b(i'm|im|i am) coming for you\b",
    r"\bik (zoek|vind|pak|krijg) (je|jou) (\w+ )?(op|wel|nog)\b|\b(dan )?ga je eraan\b",
    r"\bik kom naar (je|jou) toe\b|\bik weet wie (je|jij) bent\b",
    r"\b(hunt|track) you down\b|\bfind (out )?where you (live|are|work)\b",
]
#: Sexual harassment.
HARASSMENT = [
    r"\bstuur (me |mij )?(een |wat )?(foto('?s)?|pics?|nudes|naaktfoto('?s)?)"
    r"(\w* ){0,3}(van )?(je|jou|jezelf)?",
    r"\bsend (me )?(nudes|pics|a pic|photos|pictures)( of you)?\b",
    r"\b(show me|laat (me|mij) (je|jouw)) (your |je )?(body|boobs|tits|borsten|tieten|kont|ass)",
    r"\blaat (je|jouw) (tieten|borsten|kont|lichaam|body) (\w+ )?zien\b",
    r"\b(zonder kleren|naakt|naked)\b[^.!?]{0,20}\b(je|jij|you)\b"
    r"|\b(je|jij|you)\b[^.!?]{0,20}\b(zonder kleren|naakt|naked)\b",
    r"\bwhat are you wearing\b|\bwat heb je aan\b",
    r"\b(wil je|wanna|want to|do you want to) (met me )?(naar bed|neuken|seks|sex|fuck|sleep"
    r" with me)\b",
]
ABUSE = INSULTS + COMMANDS + THREATS_IN_PLAY + THREATS + HARASSMENT

#: Reported speech: "hij zei dat ik een hoer ben", "rot op, zei mijn moeder". It excuses an
#: insult or command in its own clause, and in the clause before when it is the inquit
#: ("..., zei mijn moeder", "..., my mom said"); never a threat or harassment.
REPORTED = (
    r"\b(zei|zegt|zeiden|zeggen|riep|noemde|noemt|noemen|schreef|said|says|called|calls"
    r"|told me|tells me)\b"
)
#: Games: "ik ga je killen in fortnite", "i'll kill you in fortnite lol". A game word
#: excuses an insult, a command or a threat of play in its own clause only.
GAME = r"\b(fortnite|minecraft|fifa|roblox|uno|schaak|chess|valorant|cod|potje|game|spel|match)\b"
#: Context in which an insult or threat is not aimed at the counsellor (scoped per clause).
NOT_AIMED = [REPORTED, GAME]


def _forms(patterns: list[str]) -> list[str]:
    return [pattern_form(p) for p in patterns]


_BARE_INSULT_PATTERN = (
    rf"^((jij|you|die|vuile|vieze|stomme|domme) )*({_INSULT_ADJ} )*{_INSULT_NOUNS}"
    r"( (jij|you|die|dat je bent))?$"
)
#: What the prefilter checks: a message with none of these patterns possible is not abuse.
_ABUSE_SET = PatternSet(
    {
        "aimed": _forms(INSULTS + COMMANDS),
        "in_play": _forms(THREATS_IN_PLAY),
        "always": _forms(THREATS + HARASSMENT),
        "bare": [_BARE_INSULT_PATTERN],
    }
)
#: The sets whose literals :func:`is_abusive_prescanned` wants.
PATTERN_SETS = (_ABUSE_SET,)
_SCAN = Scan(PATTERN_SETS)
_ANY = re.compile("|".join(f"(?:{pattern_form(p)})" for p in ABUSE))
_AIMED = [re.compile(p) for p in _ABUSE_SET.patterns["aimed"]]
_IN_PLAY = [re.compile(p) for p in _ABUSE_SET.patterns["in_play"]]
_ALWAYS = _ABUSE_SET.full["always"]
_REPORTED = re.compile(REPORTED)
_INQUIT = re.compile(rf"^{REPORTED}|{REPORTED}$")
_GAME = re.compile(GAME)
_NOT_AIMED = re.compile(f"{REPORTED}|{GAME}")
_BARE_INSULT = re.compile(_BARE_INSULT_PATTERN)
_CLAUSE = re.compile(r"[,.;:!?]+")
#: Where the scope of reported speech or a game word ends: punctuation, and "maar", "en",
#: "but", "and" (not "en dat", "and that", which go on with what was said).
_SCOPE_END = re.compile(r"[,.;:!?]+|\b(maar|but|en|and)\b(?! (dat|that)\b)")


def _spans(text: str, boundary: re.Pattern[str]) -> list[tuple[int, int]]:
    """``text`` cut at ``boundary``: (start, end) of each piece, boundaries left out."""
    spans, start = [], 0
    for cut in boundary.finditer(text):
        spans.append((start, cut.start()))
        start = cut.end()
    spans.append((start, len(text)))
    return spans


class _Scopes:
    """Which stretches of a normalised message an excuse covers."""

    def __init__(self, norm: str) -> None:
        self.spans = _spans(norm, _SCOPE_END)
        pieces = [norm[a:b].strip() for a, b in self.spans]
        inquit = [bool(_INQUIT.search(p)) for p in pieces]
        self.game = [bool(_GAME.search(p)) for p in pieces]
        self.aimed_excused = [
            self.game[i] or bool(_REPORTED.search(p)) or (i + 1 < len(pieces) and inquit[i + 1])
            for i, p in enumerate(pieces)
        ]

    def covers(self, excused: list[bool], start: int, end: int) -> bool:
        """Whether an excused piece overlaps ``text[start:end]``."""
        return any(
            flag and a < max(end, start + 1) and start < b
            for flag, (a, b) in zip(excused, self.spans, strict=True)
        )


def _unexcused_hit(
    patterns: list[re.Pattern[str]], norm: str, scopes: _Scopes, excused: list[bool]
) -> bool:
    for pattern in patterns:
        hit = pattern.search(norm)
        while hit is not None:
            if not scopes.covers(excused, hit.start(), hit.end()):
                return True
            hit = pattern.search(norm, hit.start() + 1)
    return False


def is_abusive(text: str, *, prefilter: bool = True) -> bool:
    return is_abusive_normalised(normalise(text), prefilter=prefilter)


def is_abusive_normalised(norm: str, *, prefilter: bool = True) -> bool:
    """:func:`is_abusive` on text already through :func:`normalise`. With ``prefilter`` (the
    default) a message in which no abuse pattern can match is passed at once, and patterns
    that cannot match are skipped (:mod:`moderation.prefilter`); both give the same result."""
    if prefilter:
        return is_abusive_prescanned(norm, _SCAN.present(norm))
    return _judge(norm, _AIMED, _IN_PLAY)


def is_abusive_prescanned(norm: str, present: Sequence[int]) -> bool:
    """:func:`is_abusive_normalised` (with the prefilter) given what ``Scan(PATTERN_SETS)``
    found in ``norm``."""
    possible = _possible_patterns(present[0] & _ABUSE_RELEVANT)
    if possible is None:
        return False
    return _judge(norm, *possible)


_ABUSE_RELEVANT = reduce(or_, _ABUSE_SET.relevant.values(), 0)
_Possible = tuple[list[re.Pattern[str]], list[re.Pattern[str]]]


@lru_cache(maxsize=4096)
def _possible_patterns(present: int) -> _Possible | None:
    """The aimed and in-play patterns that can match (shared; read only); ``None`` when no
    abuse pattern can."""
    possible = {name: _ABUSE_SET.possible(name, present) for name in _ABUSE_SET.patterns}
    if not any(possible.values()):
        return None
    return [_AIMED[i] for i in possible["aimed"]], [_IN_PLAY[i] for i in possible["in_play"]]


def _judge(norm: str, aimed: list[re.Pattern[str]], in_play: list[re.Pattern[str]]) -> bool:
    clauses = _spans(norm, _CLAUSE)
    # a message or clause that is nothing but an insult is aimed at the reader
    bare = [(a, b) for a, b in clauses if _BARE_INSULT.match(norm[a:b].strip())]
    if not bare and not _ANY.search(norm):
        return False
    if not _NOT_AIMED.search(norm):
        return True
    # Threats and harassment count whatever else the message says.
    if _ALWAYS.search(norm):
        return True
    scopes = _Scopes(norm)
    if _unexcused_hit(in_play, norm, scopes, scopes.game):
        return True
    if _unexcused_hit(aimed, norm, scopes, scopes.aimed_excused):
        return True
    return any(not scopes.covers(scopes.aimed_excused, a, b) for a, b in bare)
