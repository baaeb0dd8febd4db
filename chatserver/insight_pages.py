"""Server-rendered pages of insights: the statistics page and the privacy statement.

Every value that reaches HTML goes through :func:`html.escape`; links are built from the
parsed period with :func:`urllib.parse.urlencode`, never from the raw query string. Styles
come from a stylesheet on our own origin (the CSP forbids inline styles).
"""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any
from urllib.parse import urlencode

STYLESHEET_PATH = "/insights.css"

#: Minimal, phone-first styles for the two pages (WCAG AA contrast on white).
STYLESHEET = """\
body { margin: 0; color: #111827; background: #ffffff; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; overflow-wrap: anywhere; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 0.5rem; }
a { color: #3730a3; }
nav.lang { float: right; }
form.period { display: flex; flex-wrap: wrap; gap: 0.75rem; align-items: end; margin: 0 0 1rem; }
form.period label { display: flex; flex-direction: column; font-size: 0.9rem; }
form.period input, form.period button { padding: 0.4rem 0.6rem; border: 1px solid #6b7280;
  border-radius: 0.3rem; background: #ffffff; }
form.period button { background: #3730a3; color: #ffffff; border-color: #3730a3; }
table { border-collapse: collapse; width: 100%; max-width: 36rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid #e5e7eb; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; }
figure img { display: block; width: 100%; max-width: 40rem; height: auto; }
p.empty { padding: 1rem; background: #f3f4f6; border-radius: 0.3rem; }
ul.privacy li { margin: 0 0 0.6rem; }
"""

TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "title": "Statistieken",
        "bad_period": "Deze periode kan niet worden getoond",
        "from": "Van",
        "to": "Tot en met",
        "show": "Toon",
        "period": "Periode {start} tot en met {end} ({zone})",
        "empty": "Geen gesprekken in deze periode.",
        "figures": "Kerncijfers",
        "conversations_total": "Gesprekken (gestart)",
        "helped_total": "Geholpen",
        "abandoned_total": "Weggegaan tijdens het wachten",
        "abandoned_share": "Aandeel weggegaan tijdens het wachten",
        "wait": "Wachttijd van wie geholpen werd (mediaan / 90%)",
        "abandoned_wait": "Gewacht door wie wegging (mediaan / 90%)",
        "duration": "Gespreksduur (mediaan / 90%)",
        "crisis_total": "Gesprekken met een crisissignaal",
        "survey": "Enquête",
        "responses": "Reacties",
        "rating_mean": "Gemiddeld cijfer (1-5)",
        "understood_share": "Voelde zich begrepen",
        "topics": "Onderwerpen (top 10)",
        "entries": "Contacten per ingang",
        "label": "Naam",
        "count": "Aantal",
        "charts": "Grafieken",
        "chart_per_day": "Gesprekken per dag",
        "chart_hour": "Gesprekken per uur van de dag",
        "chart_topics": "Onderwerpen",
        "downloads": "Download: ",
        "other_lang": "English",
        "other_code": "en",
        "back": "Terug naar het dashboard",
        "none": "geen",
    },
    "en": {
        "title": "Statistics",
        "bad_period": "This period cannot be shown",
        "from": "From",
        "to": "To (inclusive)",
        "show": "Show",
        "period": "Period {start} to {end} ({zone})",
        "empty": "No conversations in this period.",
        "figures": "Key figures",
        "conversations_total": "Conversations (started)",
        "helped_total": "Helped",
        "abandoned_total": "Left while waiting",
        "abandoned_share": "Share who left while waiting",
        "wait": "Wait of those helped (median / 90%)",
        "abandoned_wait": "Waited by those who left (median / 90%)",
        "duration": "Conversation length (median / 90%)",
        "crisis_total": "Conversations with a crisis signal",
        "survey": "Survey",
        "responses": "Responses",
        "rating_mean": "Mean rating (1-5)",
        "understood_share": "Felt understood",
        "topics": "Topics (top 10)",
        "entries": "Contacts per entry",
        "label": "Name",
        "count": "Count",
        "charts": "Charts",
        "chart_per_day": "Conversations per day",
        "chart_hour": "Conversations per hour of the day",
        "chart_topics": "Topics",
        "downloads": "Download: ",
        "other_lang": "Nederlands",
        "other_code": "nl",
        "back": "Back to the dashboard",
        "none": "none",
    },
}


def duration_text(seconds: float | None, lang: str) -> str:
    """``95`` → ``1 min 35 s``; None → a dash."""
    if seconds is None:
        return "–"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    unit = "u" if lang == "nl" else "h"
    if hours:
        return f"{hours} {unit} {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _page(lang: str, title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="/static/common/base.css">'
        f'<link rel="stylesheet" href="{STYLESHEET_PATH}">'
        f"</head><body><main>{body}</main></body></html>"
    )


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(
        f'<tr><th scope="row">{escape(k)}</th><td class="num">{escape(v)}</td></tr>'
        for k, v in pairs
    )


def _count_table(t: dict[str, str], data: dict[str, int]) -> str:
    if not data:
        return f"<p>{escape(t['none'])}</p>"
    head = f'<tr><th scope="col">{t["label"]}</th><th scope="col">{t["count"]}</th></tr>'
    return f"<table>{head}{_rows([(k, str(v)) for k, v in data.items()])}</table>"


def _period_form(t: dict[str, str], lang: str, start: str, end: str) -> str:
    return (
        f'<form class="period" method="get" action="/stats">'
        f'<input type="hidden" name="lang" value="{lang}">'
        f'<label>{t["from"]}<input type="date" name="from" value="{escape(start)}" '
        f"required></label>"
        f'<label>{t["to"]}<input type="date" name="to" value="{escape(end)}" required></label>'
        f'<button type="submit">{t["show"]}</button></form>'
    )


def bad_period_page(reason: str, lang: str) -> str:
    """The statistics page for a period that cannot be shown: why, and the form again."""
    t = TEXTS[lang]
    body = (
        f'<nav class="lang"><a href="/supervisor?lang={lang}">{t["back"]}</a></nav>'
        f"<h1>{t['title']}</h1>"
        f'<p role="alert">{escape(t["bad_period"])}: {escape(reason)}</p>'
        f"{_period_form(t, lang, '', '')}"
    )
    return _page(lang, t["title"], body)


def stats_page(result: dict[str, Any], start: date, end: date, zone: str, lang: str) -> str:
    t = TEXTS[lang]
    query = urlencode({"from": start.isoformat(), "to": end.isoformat(), "lang": lang})
    other = urlencode({"from": start.isoformat(), "to": end.isoformat(), "lang": t["other_code"]})
    form = _period_form(t, lang, start.isoformat(), end.isoformat())
    head = (
        f'<nav class="lang"><a href="/supervisor?lang={lang}">{t["back"]}</a> · '
        f'<a href="/stats?{escape(other)}" lang="{t["other_code"]}">'
        f"{t['other_lang']}</a></nav><h1>{t['title']}</h1>{form}"
        f"<p>{escape(t['period'].format(start=start, end=end, zone=zone))}</p>"
    )
    links = (
        f'<p>{t["downloads"]}<a href="/api/stats?{escape(query)}">JSON</a> · '
        f'<a href="/api/stats.csv?{escape(query)}" download>CSV</a></p>'
    )
    if not result["conversations_total"]:
        return _page(lang, t["title"], f'{head}<p class="empty">{t["empty"]}</p>{links}')
    r, survey = result, result["survey"]

    def spread(name: str) -> str:
        return " / ".join(duration_text(r[name][q], lang) for q in ("p50", "p90"))

    figures = _rows(
        [
            (t["conversations_total"], str(r["conversations_total"])),
            (t["helped_total"], str(r["helped_total"])),
            (t["abandoned_total"], str(r["abandoned_total"])),
            (t["abandoned_share"], _share(r["abandoned_share"])),
            (t["wait"], spread("wait_seconds")),
            (t["abandoned_wait"], spread("abandoned_wait_seconds")),
            (t["duration"], spread("duration_seconds")),
            (t["crisis_total"], str(r["crisis_total"])),
        ]
    )
    mean = survey["rating_mean"]
    survey_rows = _rows(
        [
            (t["responses"], str(survey["responses"])),
            (t["rating_mean"], "–" if mean is None else f"{mean:g}"),
            (t["understood_share"], _share(survey["understood_share"])),
        ]
    )
    charts = "".join(
        f'<figure><img src="/api/stats/chart/{name}.svg?{escape(query)}" alt="{t[key]}">'
        f"<figcaption>{t[key]}</figcaption></figure>"
        for name, key in (
            ("per-day", "chart_per_day"),
            ("hour-of-week", "chart_hour"),
            ("topics", "chart_topics"),
        )
    )
    body = (
        f"{head}<h2>{t['figures']}</h2><table>{figures}</table>"
        f"<h2>{t['survey']}</h2><table>{survey_rows}</table>"
        f"<h2>{t['topics']}</h2>{_count_table(t, r['topics'])}"
        f"<h2>{t['entries']}</h2>{_count_table(t, r['entries'])}"
        f"<h2>{t['charts']}</h2>{charts}{links}"
    )
    return _page(lang, t["title"], body)


def chart_title(name: str, lang: str) -> str:
    key = {"per-day": "chart_per_day", "hour-of-week": "chart_hour", "topics": "chart_topics"}
    return TEXTS[lang][key[name]]


PRIVACY = {
    "nl": (
        "Privacyverklaring",
        [
            "Je kiest alleen een bijnaam. We vragen niets anders over je.",
            "We bewaren geen IP-adressen. Om misbruik te stoppen gebruiken we hooguit 24 uur een "
            "versleutelde code van je netwerk, nooit het adres zelf.",
            "Je gesprek (berichten en bijnaam) wordt {days} dagen na het einde gewist. Je kunt het "
            "ook zelf meteen laten wissen na het gesprek.",
            "Persoonlijke gegevens in je berichten (telefoonnummer, e-mail, adres, rekeningnummer, "
            "links) worden onherkenbaar gemaakt voordat we iets bewaren.",
            "Voor statistiek bewaren we {stats_days} dagen alleen anonieme gegevens: tijden, "
            "onderwerp en je beoordeling. Nooit wat je schreef.",
            "Je browser onthoudt je gesprek alleen in dit tabblad (sessionStorage), niet daarna.",
            "Hulpverleners en hun begeleiders lezen mee om je goed te helpen; dat wordt "
            "vastgelegd.",
            "We gebruiken geen cookies voor bezoekers, geen tracking en geen diensten van anderen.",
        ],
        "Terug naar de chat",
    ),
    "en": (
        "Privacy statement",
        [
            "You only pick a nickname. We ask nothing else about you.",
            "We keep no IP addresses. To stop abuse we use, for at most 24 hours, a scrambled "
            "code of your network, never the address itself.",
            "Your conversation (messages and nickname) is deleted {days} days after it ends. You "
            "can also have it deleted yourself right after the chat.",
            "Personal details in your messages (phone number, e-mail, address, bank account, "
            "links) are made unrecognisable before anything is stored.",
            "For statistics we keep only anonymous facts for {stats_days} days: times, topic and "
            "your rating. Never what you wrote.",
            "Your browser remembers your chat only in this tab (sessionStorage), not after.",
            "Counsellors and their supervisors read along to help you well; that is recorded.",
            "We use no cookies for visitors, no tracking and no services of others.",
        ],
        "Back to the chat",
    ),
}


def privacy_page(lang: str, transcripts_days: float, statistics_days: float) -> str:
    title, lines, back = PRIVACY[lang]
    days, stats_days = f"{transcripts_days:g}", f"{statistics_days:g}"
    items = "".join(
        f"<li>{escape(line.format(days=days, stats_days=stats_days))}</li>" for line in lines
    )
    other = "en" if lang == "nl" else "nl"
    switch = "English" if lang == "nl" else "Nederlands"
    body = (
        f'<nav class="lang"><a href="/privacy?lang={other}" lang="{other}">{switch}</a></nav>'
        f'<h1>{title}</h1><ul class="privacy">{items}</ul>'
        f'<p><a href="/?lang={lang}">{back}</a></p>'
    )
    return _page(lang, title, body)
