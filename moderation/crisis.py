"""Crisis signals in Dutch and English: suicide, self-harm, abuse, acute danger.

The rules are data: per category, *strong* patterns (a crisis even in a negative-looking
sentence: "ik wil niet meer leven", "i don't want to live") and *plain* patterns that a
negation just before them cancels ("ik wil niet dood", "i'm not suicidal"). Idioms that
only sound like danger ("ik ga dood van het lachen", "this homework is killing me") are
taken out of the text first. Text is normalised (:mod:`moderation.normalise`), so chat
spelling ("d00d", "doooood") and accents do not hide a signal.

Decisions a helpline would make (when in doubt, a human should look fast):

* "ik ga dood" / "i'm going to die" on its own is a crisis signal; with "van ...", "als ...",
  "haha" or "lol" after it, it is the idiom;
* questions about death or methods ("is het normaal dat ik aan de dood denk?", "hoeveel
  pillen ...") are signals; a friend at risk now ("she will kill herself tonight") is too;
* someone else in the past (grief), stories, songs, the news, school subjects, games and
  figurative "dat examen was zelfmoord" are not; nor is the hyperbolic "mijn moeder vermoordt
  me als ...", unless it is about telling ("... if i tell anyone").

Measured on ``tests/moderation/data/crisis_*.tsv`` by ``benchmarks/moderation_eval.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, reduce
from operator import or_

from moderation.normalise import normalise, pattern_form
from moderation.prefilter import PatternSet, Scan

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
    # a story, a song, the news or a school subject: what happens there is not the writer's
    # danger, as long as the writer does not step in ("... en daarna wil ik dood")
    r"\b(boek|book|film|movie|serie|series|show|spreekbeurt|project|onderwerp|topic|les|class"
    r"|lesson|nummer|liedje|lied|song|lyrics|songtekst|rapper|gedicht|poem|werkstuk|essay"
    r"|nieuws|news|artikel|article|documentaire|documentary|verhaal|story|character|personage)"
    r"\b(?:(?!\b(?:ik|i|i'm|me|mij|mezelf|myself|my|mijn)\b)[^.!?]){0,50}?"
    r"\b(zelfmoord\w*|suicid\w*|dood\w*|sterven|die|dies|dying|death|dead|springt|springen"
    r"|jumps|jumping|killed|kills)\b",
    r"(zelfmoord|suicide)[^.!?]{0,40}(onderwerp|topic|boek|book|film|movie)",
    # figurative: "dat examen was zelfmoord", "running in this heat is suicide" (a bad idea)
    r"\b(is|was|wordt|lijkt|it's|its)( me)? (echt |gewoon |pure |puur |totale |complete |just )?"
    r"(zelfmoord|suicide)\b(?! (plegen|gepleegd|te plegen))",
    # someone else, in the past: grief, not the writer's danger
    r"\b(hij|zij|ze|he|she|they|vriend\w*|friend|broer|brother|zus|sister|neef|nicht|cousin|oom"
    r"|uncle|tante|aunt|opa|oma|grandpa|grandma|klasgenoot|classmate|iemand|someone)\b"
    r"[^.!?]{0,30}?\b(zelfmoord gepleegd|pleegde zelfmoord|killed (himself|herself|themselves)"
    r"|committed suicide|died by suicide|took (his|her|their) (own )?life)",
    # games and sport: "my brother beat me at chess", "ik ga je killen in fortnite"
    r"\bbeat me (at|in)\b",
    r"\b(we|they|ze|jullie) (\w+ ){0,2}(bespraken|bespreken|praatten|talked|discussed|learned"
    r"|leerden|hadden het)\b[^.!?]{0,20}\b(zelfmoord|suicide|dood|death)\b",
    r"\bhit the jackpot\b",
    r"\b(in|bij|met) (het |een )?(potje )?(fifa|roblox|uno|schaak|schaken|chess|cod|valorant)\b",
    # the hyperbolic conditional: "mijn moeder vermoordt me als ...", "kills me if ..."
    r"\b(vermoordt?|vermoorden|killt?|kills|will kill|is going to kill|going to kill)"
    r" (me|mij) (als|if|when|wanneer)\b(?! (i|ik) (tell|vertel|zeg|praat|talk))",
    r"\bik ga (bijna |echt )?dood als\b",
]

NEGATIONS = (
    r"\b(niet|geen|nooit|not|never|no|don't|dont|do not|doesn't|isn't|"
    r"aren't|ain't|won't|nobody|niemand|stopped|gestopt)\b"
)

STRONG: dict[str, list[str]] = {
    "suicide": [
        r"(wil|wou|wilde)( ik)? (echt |gewoon |liever )?niet meer (verder )?(leven|bestaan)",
        r"\bstoppen met leven|\bstop met leven",
        r"(wish|zou willen dat|had liever dat|was) [^.!?]{0,20}(nooit|never)"
        r" (geboren|been born|born)",
        r"(nooit meer|never) (wakker (worden|word)|wake up)",
        r"(verdwijnen|verdwijn) en nooit meer terug",
        r"wil er (gewoon )?niet meer zijn",
        r"niet meer wakker (worden|word)",
        r"geen zin meer (om |in het )?leven",
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
        r"\b(als|wanneer|voor als) ik er (\w+ )?niet meer ben\b|\b(if|when) i('m| am| was| were)"
        r" (\w+ )?(gone|dead)\b",
        r"better off (not existing|gone|not alive)",
        r"\bstop existing\b|\bnot (to )?exist(ing)? anymore\b",
    ],
    # the negation is the danger here: "niet veilig", "not safe"
    "danger": [
        r"(ben|voel me|is het) (hier |thuis )?niet (meer )?veilig",
        r"durf niet (meer )?naar huis",
        r"(i'm|im|i am|i feel) not safe",
        r"(don't|do not|never) feel safe (at home|here|with)",
        r"not safe at home",
        r"\blaat (me|mij) (\w+ ){0,3}niet eten\b|\b(won't|doesn't|don't) (let me eat|feed me)\b",
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
        r"(gonna|going to) end it\b(?! with)",
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
        r"van het leven beroven",
        r"\b(me|mezelf|mijzelf) (\w+ ){0,3}(van kant|om zeep|om het leven) (maken|helpen|brengen)",
        r"\b(me|mezelf|mijzelf) (\w+ ){0,3}(dood ?maken|doden|vermoorden|op ?hangen|verdrinken"
        r"|iets aan ?doen|dood ?schieten)",
        r"\b(hang|maak|help|breng|doe) (me|mezelf) (\w+ ){0,2}(op|van kant|om zeep|om het leven"
        r"|iets aan)\b",
        r"(eind|einde) (aan|achter) (\w+ ){0,3}(maken|maak|gemaakt)",
        r"\bkill(ing)? (myself|my self)",
        r"\bunaliv",
        r"\b(ik|i)\b[^.!?]{0,25}\b(aan|about|over) (de dood|death|dying|dood ?gaan|sterven"
        r"|killing myself|ending (it|my life))\b(?! (van|of)\b)",
        r"\bik (\w+ ){0,2}dood (wil|wilde|wou)\b(?! van\b)",
        r"\b(is it|is het) (normal|normaal|weird|raar|gek|bad|erg|ok|oke)\b[^.!?]{0,30}"
        r"\b(dying|death|die|dood|sterven|suicide|zelfmoord)\b",
        r"\bik ga (echt |nu )?dood\b(?! (van|als|zo|door|om|aan|lol|haha))",
        r"\bi'm going to die\b(?! (of|if|when|from|lol|haha))",
        r"\b\d{2,} (paracetamol|pillen|pills|tabletten|tablets|slaappillen)",
        r"\b(bottle|pot|doos|potje|strip) (of |met |vol )?(pills|pillen|paracetamol|tabletten)",
        r"\b(alle|all (the |my )?)(pillen|pills|medicijnen|meds|paracetamol)\b",
        r"(pillen|pills|paracetamol|tabletten|tablets)\b[^.!?]{0,40}\b(dood|die|dying|sterven)\b",
        r"(in front of|voor|onder) (a|the|de|een) (train|trein|bus|auto|car|truck)\b",
        r"\b(ik|i'm|i am)\b (\w+ ){0,2}(op|on) (het|the) (dak|roof)\b",
        r"(goodbye|farewell) (letter|note)",
        r"(plan|planning|going|want|wil) (to )?end (it|my life)\b(?! with)",
        r"(gebruiken|use it) (op|on) (mezelf|myself)|\b(op|on) (mezelf|myself) (gebruiken|use)",
        r"(will|going to|wants to|want to|gaat|wil) kill (himself|herself|themselves)",
        r"\b(weg uit|klaar met|done with|finished with|tired of) (dit "
        r"|het |my |this )?(leven|life)\b",
        r"\bi want out\b|\bik wil eruit stappen\b",
        r"\b(spaar|spaarde|sparen|saving|save|saved|verzamel|collect"
        r"|collecting|hoard)\w* (\w+ ){0,3}"
        r"(pillen|pills|medicijnen|meds|paracetamol)",
        r"(scheermesje|mesje|mesjes|blade|blades|razor)\b[^.!?]{0,40}\b(voor als|for when|in case)",
        r"(snelste|makkelijkste|pijnloze|pijnloos|beste|fastest|easiest|painless|quickest|best)"
        r" (manier|way) (om |to )?(dood|die|sterven|kill myself|zelfmoord|end it)",
        r"\b(beter|liever) dood (kan |zou )?(zijn|ben|was|wezen)\b",
        r"\b(mezelf|myself) (\w+ )?(laten verdwijnen|disappear)\b",
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
        r"(in|op) (mijn|m'n|mn) (boven|onder)?(armen|benen|polsen|dijen"
        r"|huid) (ge)?(sneden|gekrast)",
        r"\b(scratched|cut|carved|burned) (into )?my (thighs|arms|wrists|legs|skin|stomach)\b",
        r"gesneden[^.!?]{0,20}(arm|armen|benen|been|pols|polsen|dijen)",
        r"\b(mezelf|mijzelf|myself) (\w+ ){0,2}(gesneden|gekrast|gebrand|verwond|pijn gedaan)",
        r"\b(tot|until|till) (het|it|they|my \w+|mijn \w+) (bloed|bloeden|bleeds?)\b",
        r"\b(bonk|bang|sla|hit|slaan|bonken) (\w+ )?(mijn|my) (hoofd|head) (tegen|against)",
    ],
    "abuse": [
        r"(vader|moeder|stiefvader|stiefmoeder|pa|ma|papa|mama|vriend|broer|oom|opa|hij|ze)"
        r" (slaat|sloeg|schopt|schopte|misbruikt|misbruikte|verkracht|verkrachtte|betast)"
        r" (me|mij)\b",
        r"word (\w+ ){0,3}(geslagen|mishandeld|misbruikt|verkracht|betast)",
        r"in elkaar (geslagen|geschopt|slaan|schoppen)|beat(en)? me up",
        r"gedwongen (om )?(\w+ )?(dingen|seks|sex)|forced (me )?to do (things|stuff)",
        r"\b(doet|deed|doen) dingen (met|bij) (me|mij)\b|\b(does|did) (things|stuff) to me\b",
        r"\b(heeft|has|have|got) (my |mijn )?(foto's|fotos|pictures|pics|photos|nudes)"
        r"( van (me|mij)| of me)?\b[^.!?]{0,40}\b(stuurt|sturen|verspreid\w*|send|post|share|leak)",
        r"\b(vriendje|vriendin|stiefvader|stiefmoeder|vader|moeder|broer|oom|opa|he|she)"
        r" (sloeg|slaat|schopte|schopt) (me|mij)\b",
        r"dreigt (me|mij) (\w+ )?(slaan|vermoorden|pijn doen|dood ?maken|iets aan ?doen)",
        r"(dwong|dwingt|forced|forces|forcing) (me|mij) (\w+ ){0,3}(seks|sex)",
        r"dreigt (\w+ ){0,3}(foto|foto's|fotos|naaktfoto|naaktfoto's|naaktfotos|nudes)"
        r" (\w+ )?(verspreiden|online|delen|sturen)",
        r"threat\w* to (share|post|leak|send) (my )?(nudes|pics|pictures|photos)",
        r"\b(sluit|sloot|locked|locks) (me|mij) (\w+ ){0,3}(op|in|up)\b",
        r"\b(zit|zat) (\w+ )?opgesloten",
        r"(dad|father|mom|mum|mother|stepdad|stepfather|uncle|brother|boyfriend|he|she)"
        r" (slaps|slapped|kicks|kicked|punches|punched|chokes|choked) me\b",
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
        r"\b[^.!?]{0,30}\b((me|mij)\b[^.!?]{0,20}\b(geslagen|geschopt"
        r"|slaat|sloeg|schopt)|mishandelt"
        r"|raakt (me|mij) aan|aangeraakt)",
        r"(dad|father|mom|mum|mother|stepdad|stepfather|uncle|brother|boyfriend)\b[^.!?]{0,30}"
        r"\b(punched|punches|slapped|slaps|kicked|kicks|beats|hits|hit me|touches me|choked)",
        r"(komt|kwam|comes|came) ('?s nachts |at night )?(in|into) (mijn|my) (kamer|bed|room)",
        r"(gechanteerd|chanteert|chantage|blackmail(ed|ing)?|sextortion)",
    ],
    "danger": [
        r"bang dat hij (me|mij) (vermoordt|doodmaakt|iets aandoet)",
        r"bang dat (\w+ ){0,3}(me|mij) (\w+ ){0,2}(iets aandoet|vermoordt|doodmaakt|pijn doet"
        r"|slaat)",
        r"(afraid|scared|terrified) (that )?(\w+ ){0,3}(will|is going to|going to) (kill|hurt|beat)"
        r" me",
        r"\b(ben|am|i) (van huis )?(weggelopen|ran away)\b",
        r"\b(nergens|nowhere) (\w+ ){0,2}(slapen|to sleep|to stay)\b",
        r"weet niet waar ik (\w+ )?(moet|kan) slapen",
        r"\b(volgt|achtervolgt) (me|mij)\b|\b(following|stalking) me\b(?! (on|op)\b)",
        r"\b(die|who) (me|mij) (pijn|iets) (wil|wilde|gaat) (doen|aandoen)|wants to hurt me",
        r"dreigt (me|mij) (dood|te vermoorden)",
        r"bedreigt (me|mij)",
        r"van huis weggelopen",
        r"scared to go home",
        r"(he'll|he will|she'll|she will) (kill|hurt|beat|hit) me",
        r"threatened to kill me",
        r"ran away from home",
        r"(bang|scared|afraid|terrified) (voor|of) (mijn|my) (vader|moeder|stiefvader|vriend|"
        r"father|dad|mother|mom|stepdad|boyfriend)",
        r"(steeds )?(agressiever|agressief|violent|gewelddadig)",
    ],
}

#: Phrases that look like a plain pattern but are not about danger to the writer.
NOT_DANGER = [r"not safe driving", r"niet veilig (rijden|fietsen)"]


def _forms(patterns: list[str]) -> list[str]:
    return [pattern_form(p) for p in patterns]


#: Idioms are taken out of the normalised text; the signals are looked for in what is left.
_IDIOM_SET = PatternSet({"idioms": _forms(IDIOMS)})
_SIGNAL_SET = PatternSet(
    {"not_danger": _forms(NOT_DANGER)}
    | {f"strong:{cat}": _forms(p) for cat, p in STRONG.items()}
    | {f"plain:{cat}": _forms(p) for cat, p in PLAIN.items()}
)
#: The sets whose literals :func:`detect_prescanned` wants, in the order it wants them.
PATTERN_SETS = (_IDIOM_SET, _SIGNAL_SET)
_SCAN = Scan(PATTERN_SETS)
_IDIOMS = _IDIOM_SET.full["idioms"]
_NEGATION = re.compile(NEGATIONS)
_STRONG = {cat: _SIGNAL_SET.full[f"strong:{cat}"] for cat in STRONG}
_PLAIN = {cat: _SIGNAL_SET.full[f"plain:{cat}"] for cat in PLAIN}
_NOT_DANGER = _SIGNAL_SET.full["not_danger"]
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


def detect(text: str, *, prefilter: bool = True) -> CrisisResult:
    return detect_normalised(normalise(text), prefilter=prefilter)


def detect_normalised(norm: str, *, prefilter: bool = True) -> CrisisResult:
    """:func:`detect` on text already through :func:`normalise`. With ``prefilter`` (the
    default) patterns that cannot match are skipped (:mod:`moderation.prefilter`); without it
    every pattern is run. Both give the same result."""
    if not prefilter:
        return _judge(_NOT_DANGER.sub(" ", _IDIOMS.sub(" ", norm)), _STRONG, _PLAIN)
    return detect_prescanned(norm, _SCAN.present(norm))


def detect_prescanned(norm: str, present: Sequence[int]) -> CrisisResult:
    """:func:`detect_normalised` (with the prefilter) given what ``Scan(PATTERN_SETS)`` found
    in ``norm``: the literals of the idiom set and of the signal set. The signal set's are
    looked for again only when taking out idioms or "not danger" phrases changed the text."""
    idiom_present, present_now = present
    idioms = _IDIOM_SET.regex("idioms", idiom_present)
    if idioms is not None:
        changed = idioms.sub(" ", norm)
        if changed != norm:
            norm, present_now = changed, _SIGNAL_SET.present(changed)
    not_danger = _SIGNAL_SET.regex("not_danger", present_now)
    if not_danger is not None:
        changed = not_danger.sub(" ", norm)
        if changed != norm:
            norm, present_now = changed, _SIGNAL_SET.present(changed)
    strong, plain = _signal_patterns(present_now & _SIGNAL_RELEVANT)
    return _judge(norm, strong, plain)


_SIGNAL_RELEVANT = reduce(or_, _SIGNAL_SET.relevant.values(), 0)

_Patterns = dict[str, re.Pattern[str] | None]


@lru_cache(maxsize=4096)
def _signal_patterns(present: int) -> tuple[_Patterns, _Patterns]:
    """The strong and plain alternations per category that can match (shared; read only)."""
    strong = {cat: _SIGNAL_SET.regex(f"strong:{cat}", present) for cat in STRONG}
    plain = {cat: _SIGNAL_SET.regex(f"plain:{cat}", present) for cat in PLAIN}
    return strong, plain


def _judge(
    norm: str,
    strong: Mapping[str, re.Pattern[str] | None],
    plain: Mapping[str, re.Pattern[str] | None],
) -> CrisisResult:
    found: list[str] = []
    for category, pattern in strong.items():
        if pattern is not None and pattern.search(norm):
            found.append(category)
    for category, pattern in plain.items():
        if category in found or pattern is None:
            continue
        for match in pattern.finditer(norm):
            if not _negated(norm, match.start(), match.end()) and not _PAST.search(norm):
                found.append(category)
                break
    return CrisisResult(bool(found), tuple(found))
