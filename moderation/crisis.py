"""Crisis signals in Dutch and English: suicide, self-harm, abuse, acute danger.

The rules are data: per category, *strong* patterns (a crisis even in a negative-looking
sentence: "ik wil niet meer leven", "i don't want to live") and *plain* patterns that a
negation just before them cancels ("ik wil niet dood", "i'm not suicidal"). Idioms that
only sound like danger ("ik ga dood van het lachen", "this homework is killing me") are
taken out of the text first. Text is normalised (:mod:`moderation.normalise`), so chat
spelling ("d00d", "doooood") and accents do not hide a signal.

Measured on ``tests/moderation/data/crisis_labelled.tsv`` by ``benchmarks/moderation_eval.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moderation.normalise import normalise

#: Said about something else, not about the writer being in danger.
IDIOMS = [
    r"(ga|gaat|lig|ligt) (bijna )?dood van (het )?(lachen|de honger|de dorst|verveling|de stress)",
    r"lach (me|mij) (bijna )?dood",
    r"schrok (me|mij) dood",
    r"verveel (me|mij) dood",
    r"dood ?(moe|saai|eng|stil|gewoon|bang|sbang|ziek|graag)",
    r"doodsbang",
    r"doodeng",
    r"dodelijk saai",
    r"(telefoon|batterij|accu|mobiel|laptop|phone|battery)( is| was)?"
    r" (bijna )?(dood|leeg|died|dead)",
    r"my (phone|battery|laptop) (is )?(died|dead)",
    r"liever dood dan",
    r"rather die than",
    r"dying of laughter",
    r"dying to \w+",
    r"(is|are|was|it's|its|you're|youre) killing me",
    r"bored to death",
    r"scared (me )?to death",
    r"dead tired",
    r"to die for",
    r"killed it",
    r"kill(ed|ing)? time",
    r"(i'm|im|i am) (so )?dead (if|lol|haha)",
    r"lol i'm dead",
    r"\blol,? (i'm|im) dead",
    r"(haha|lol) ik lig dood",
    r"ik lig dood",
    r"(in|bij) (het )?(spel|game|minecraft|fortnite)",
    r"(character|karakter) died",
    r"\bi died so many times",
    # talking about the subject (school work, a book, prevention), not about oneself
    r"zelfmoordpreventie",
    r"suicide prevention",
    r"(boek|book|film|movie|serie|show|spreekbeurt|project|onderwerp|topic|les|class)\b"
    r"[^.!?]{0,40}(zelfmoord|suicide)",
    r"(zelfmoord|suicide)[^.!?]{0,40}(onderwerp|topic|boek|book|film|movie)",
]

NEGATIONS = (
    r"\b(niet|geen|nooit|not|never|no|don't|dont|do not|doesn't|isn't|"
    r"aren't|ain't|won't|nobody|niemand|stopped|gestopt)\b"
)

STRONG: dict[str, list[str]] = {
    "suicide": [
        r"wil(ik)? (echt |gewoon |liever )?niet meer (verder )?leven",
        r"wil er (gewoon )?niet meer zijn",
        r"niet meer wakker (worden|word)",
        r"geen zin meer (om te|in het) leven",
        r"leven heeft geen zin",
        r"don'?t want to (live(?! (with|in|at|there|near|on))|be alive|be here|wake up)",
        r"do not want to (live(?! (with|in|at|there|near|on))|be alive)",
        r"no reason to live",
        r"niemand zou (me|mij) missen",
        r"nobody would miss me",
        r"better off (dead|without me)",
        r"beter af zonder (mij|me)",
        r"zie het (echt |gewoon )?niet (meer )?zitten",
        r"\bik wil niet meer$",
        r"\bik wil niet meer(?= ?[,.!?]| ik| en)",
        r"heeft (allemaal |echt )?geen zin meer",
        r"can'?t go on",
        r"(no |the )?point (of|in) (living|life|being alive)",
    ],
    # the negation is the danger here: "niet veilig", "not safe"
    "danger": [
        r"(ben|voel me|is het) (hier |thuis )?niet (meer )?veilig",
        r"durf niet (meer )?naar huis",
        r"(i'm|im|i am|i feel) not safe",
        r"not safe at home",
    ],
}

PLAIN: dict[str, list[str]] = {
    "suicide": [
        r"zelfmoord",
        r"zelfmoort",
        r"suicid",
        r"suicide",
        r"\bwil(le)? (\w+ ){0,2}dood\b",
        r"\bwil (me|mij|mezelf) (dood|van kant) maken",
        r"\bwil sterven\b",
        r"van kant maken",
        r"(eind|einde|punt) (aan|achter) (mijn leven|alles|het)",
        r"(eind|einde) aan (mijn|m'n|mn) leven",
        r"er een (eind|einde) aan (maken|maak)",
        r"maak er een (eind|einde) aan",
        r"(punt|eind|einde)\b[^.!?]{0,25}achter alles",
        r"mijn leven (beeindigen|beëindigen)",
        r"leven beeindigen",
        r"(pillen|pilletjes|strip) (\w+ ){0,3}(geslikt|ingenomen|genomen)",
        r"overdosis",
        r"(van|voor) (het dak|de trein|een brug) (te )?springen",
        r"sta (bij|op) het spoor",
        r"mezelf (te )?(op ?hangen|ophangen|doden|vermoorden|iets aandoen)",
        r"touw gekocht",
        r"liever dood",
        r"was ik maar dood",
        r"afscheidsbrief",
        r"voor altijd verdwijnen",
        r"verdwijnen voor altijd",
        r"polsen (open)?gesneden",
        r"kill (myself|my self)",
        r"\bkms\b",
        r"\bunalive\b",
        r"want(ed)? to di+e+\b",
        r"wanna di+e+\b",
        r"end (my life|it all)",
        r"gonna end it\b",
        r"take my (own )?life",
        r"wish i (was|were) dead",
        r"(took|swallowed) (\w+ ){0,3}pills",
        r"overdose",
        r"(jump|jumping) off",
        r"standing on the bridge",
        r"hang myself",
        r"suicide note",
        r"bought a rope",
        r"plan to kill",
        r"(beter|liever)\b[^.!?]{0,20}\bals ik dood (ben|was|zou zijn)",
        r"(pillen|medicijnen|pilletjes|pills|meds)\b[^.!?]{0,40}\b(nemen|slikken|innemen)",
        r"(swallow|take|taking|overdose on) (all )?(of )?(the |my )?(pills|meds)",
        r"(dak|flat|brug|roof|bridge|building)\b[^.!?]{0,30}\b(springen|spring|jump)",
        r"ending my life",
        r"(feel like|want to) dying",
        r"want (it|everything|it all) to end",
        r"disappear forever",
        r"(cut|slit|slice) my wrists",
    ],
    "self_harm": [
        r"\b(snij|snijd|sneed|gesneden)\b (\w+ ){0,2}"
        r"(mezelf|mijzelf|me|mijn (arm|armen|pols|polsen|benen))",
        r"mezelf (weer )?gesneden",
        r"\b(ik )?kras(sen)? mezelf",
        r"\bweer gekrast",
        r"aan het krassen",
        r"\bik kras\b(?! (op|wat|in (mijn|het|een) (schrift|boek|tafel)))",
        r"mezelf (expres )?(pijn|iets) doen",
        r"doe mezelf (expres )?pijn",
        r"beschadig mezelf",
        r"zelfbeschadiging",
        r"automutilatie",
        r"brand mezelf",
        r"sla mezelf",
        r"\bcut(ting)? myself",
        r"(i'm|im|i am) cutting",
        r"cutting again",
        r"self[- ]?harm",
        r"hurt(ing)? myself",
        r"burn(ing)? myself",
        r"mezelf (te )?(snijden|krassen|pijn (te )?doen|verwonden)",
        r"(in|op) (mijn|m'n|mn) (arm|armen|benen|been|pols|polsen|dijen|buik)"
        r" (ge)?(sneden|gesneden|gekrast)",
        r"(weer )?(in|op) (mijn|m'n|mn) (armen|benen|polsen|dijen) (ge)?(sneden|gesneden|gekrast)",
        r"gesneden[^.!?]{0,20}(arm|armen|benen|been|pols|polsen|dijen)",
    ],
    "abuse": [
        r"(vader|moeder|stiefvader|stiefmoeder|pa|ma|papa|mama|vriend|broer|oom|opa|hij|ze)"
        r" (slaat|sloeg|schopt|schopte|misbruikt|misbruikte|verkracht|verkrachtte|betast)"
        r" (me|mij)\b",
        r"word (thuis )?(geslagen|mishandeld|misbruikt|verkracht|betast)",
        r"(ben|werd) (verkracht|aangerand|misbruikt|mishandeld|betast)",
        r"heeft (me|mij) (verkracht|misbruikt|betast|aangerand)",
        r"ze slaan (me|mij)",
        r"zit aan (me|mij)",
        r"dwingt (me|mij) tot seks",
        r"seksueel misbruik",
        r"(dad|father|mom|mum|mother|stepdad|stepmom|boyfriend|brother|uncle|he|she)"
        r" (hits|hit|beats|beat|abuses|abused|rapes|raped|touches|touched) me\b",
        r"(i'm|im|i am|i was|i got|i get|being) (being )?(raped|abused|beaten|molested)",
        r"sexually abused",
        r"forcing me to have sex",
        r"he raped me",
        r"(vader|moeder|stiefvader|stiefmoeder|papa|mama|\bpa\b|\bma\b|oom|broer|vriend)"
        r"\b[^.!?]{0,30}\b((me|mij)\b[^.!?]{0,20}\b(geslagen|geschopt|slaat|sloeg|schopt)|mishandelt"
        r"|raakt (me|mij) aan|aangeraakt)",
        r"(dad|father|mom|mum|mother|stepdad|stepfather|uncle|brother|boyfriend)\b[^.!?]{0,30}"
        r"\b(punched|punches|slapped|slaps|kicked|kicks|beats|hits|hit me|touches me|choked)",
        r"(komt|kwam|comes|came) ('?s nachts |at night )?(in|into) (mijn|my) (kamer|bed|room)",
        r"(gechanteerd|chanteert|chantage|blackmail(ed|ing)?|sextortion)",
    ],
    "danger": [
        r"bang dat hij (me|mij) (vermoordt|doodmaakt|iets aandoet)",
        r"dreigt (me|mij) (dood|te vermoorden)",
        r"bedreigt (me|mij)",
        r"van huis weggelopen",
        r"scared to go home",
        r"(he'll|he will|she'll) kill me",
        r"threatened to kill me",
        r"ran away from home",
        r"(bang|scared|afraid|terrified) (voor|of) (mijn|my) (vader|moeder|stiefvader|vriend|"
        r"father|dad|mother|mom|stepdad|boyfriend)",
        r"(steeds )?(agressiever|agressief|violent|gewelddadig)",
    ],
}

#: Phrases that look like a plain pattern but are not about danger to the writer.
NOT_DANGER = [r"not safe driving", r"niet veilig (rijden|fietsen)"]


def _compile(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_IDIOMS = _compile(IDIOMS)
_NEGATION = re.compile(NEGATIONS)
_STRONG = {cat: _compile(p) for cat, p in STRONG.items()}
_PLAIN = {cat: _compile(p) for cat, p in PLAIN.items()}
_NOT_DANGER = _compile(NOT_DANGER)
_PAST = re.compile(
    r"\b(vroeger|used to|gestopt|stopped|not anymore|niet meer sinds|"
    r"per ongeluk|by accident|accidentally|"
    r"geen \w+ meer|don't \w+ \w+ anymore|dat doe ik niet meer|but i'm better|"
    r"maar nu gaat het goed)\b"
)


@dataclass(frozen=True, slots=True)
class CrisisResult:
    crisis: bool
    categories: tuple[str, ...] = ()


_CLAUSE = re.compile(r"[,.;:!?]")


def _negated(text: str, start: int, end: int) -> bool:
    """A negation in the same clause just before the match, inside it, or right after it
    ("ik wil niet dood", "ze slaan me niet", "my dad never hits me") cancels it."""
    before = _CLAUSE.split(text[:start])[-1]
    window = " ".join(before.split()[-4:])
    after = " ".join(_CLAUSE.split(text[end:])[0].split()[:1])
    return bool(
        _NEGATION.search(window) or _NEGATION.search(text[start:end]) or _NEGATION.search(after)
    )


def detect(text: str) -> CrisisResult:
    norm = _NOT_DANGER.sub(" ", _IDIOMS.sub(" ", normalise(text)))
    found: list[str] = []
    for category, pattern in _STRONG.items():
        if pattern.search(norm):
            found.append(category)
    for category, pattern in _PLAIN.items():
        if category in found:
            continue
        for match in pattern.finditer(norm):
            if not _negated(norm, match.start(), match.end()) and not _PAST.search(norm):
                found.append(category)
                break
    return CrisisResult(bool(found), tuple(found))
