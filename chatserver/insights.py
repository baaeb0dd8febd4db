"""HTTP for insight without surveillance: statistics, export, metrics, privacy statement.

Statistics and metrics come from anonymous facts and counters only: no nickname, no text,
no address in any answer or label.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from chatserver import stats
from chatserver.appkeys import SETTINGS, STORE
from chatserver.review import error, staff_or_error
from chatserver.store import Store
from moderation import redact

NO_STORE = {"Cache-Control": "no-store"}
WAIT_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


def _period(request: web.Request) -> tuple[float, float] | web.Response:
    try:
        end = (
            date.fromisoformat(request.query["to"])
            if "to" in request.query
            else (datetime.now(UTC).date())
        )
        start = (
            date.fromisoformat(request.query["from"])
            if "from" in request.query
            else (end - timedelta(days=30))
        )
    except ValueError:
        return error(400, "invalid", "from/to must be YYYY-MM-DD")
    begin = datetime.combine(start, datetime.min.time(), UTC).timestamp()
    finish = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    return begin, finish


async def _stats(request: web.Request) -> dict[str, Any] | web.Response:
    member = await staff_or_error(request, lambda m: m.reads_statistics)
    if isinstance(member, web.Response):
        return member
    period = _period(request)
    if isinstance(period, web.Response):
        return period
    facts = await request.app[STORE].facts_between(*period)
    return stats.compute(facts)


async def get_stats(request: web.Request) -> web.Response:
    result = await _stats(request)
    if isinstance(result, web.Response):
        return result
    return web.json_response(result, headers=NO_STORE)


async def get_stats_csv(request: web.Request) -> web.Response:
    result = await _stats(request)
    if isinstance(result, web.Response):
        return result
    out = io.StringIO()
    csv.writer(out).writerows(stats.csv_rows(result))
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="chat-statistics.csv"'},
    )


async def get_chart(request: web.Request) -> web.Response:
    result = await _stats(request)
    if isinstance(result, web.Response):
        return result
    name = request.match_info["name"]
    if name == "per-day":
        svg = stats.bar_chart_svg("Gesprekken per dag / conversations per day", result["per_day"])
    elif name == "topics":
        svg = stats.bar_chart_svg("Onderwerpen / topics", result["topics"])
    elif name == "hour-of-week":
        by_hour = {f"{h:02d}": sum(day[h] for day in result["per_hour_of_week"]) for h in range(24)}
        svg = stats.bar_chart_svg("Gesprekken per uur / conversations per hour", by_hour)
    else:
        return error(404, "not_found", "no such chart")
    return web.Response(text=svg, content_type="image/svg+xml", headers=NO_STORE)


async def stats_page(request: web.Request) -> web.Response:
    member = await staff_or_error(request, lambda m: m.reads_statistics)
    if isinstance(member, web.Response):
        return member
    query = request.query_string
    charts = "".join(
        f'<figure><img src="/api/stats/chart/{n}.svg?{query}" alt="{alt}"></figure>'
        for n, alt in (
            ("per-day", "Gesprekken per dag"),
            ("hour-of-week", "Gesprekken per uur"),
            ("topics", "Onderwerpen"),
        )
    )
    body = (
        f'<!doctype html><html lang="nl"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>Statistieken</title><link rel="stylesheet" href="/static/common/base.css">'
        f"</head><body><main><h1>Statistieken</h1>"
        f'<p><a href="/api/stats?{query}">JSON</a> · <a href="/api/stats.csv?{query}">CSV</a>'
        f"</p>{charts}</main></body></html>"
    )
    return web.Response(text=body, content_type="text/html", headers=NO_STORE)


async def export(request: web.Request) -> web.Response:
    """Ended conversations for training: personal data redacted, nicknames replaced by roles."""
    member = await staff_or_error(request, lambda m: m.supervises)
    if isinstance(member, web.Response):
        return member
    period = _period(request)
    if isinstance(period, web.Response):
        return period
    store = request.app[STORE]
    out = []
    for conv in await store.ended_ids(*period):
        meta = await store.conversation(conv)
        if meta is None:
            continue  # text already past retention
        role = {"visitor": "Bezoeker", "counsellor": "Hulpverlener", "system": "Systeem"}
        out.append(
            {
                "topic": meta.get("topic") or None,
                "messages": [
                    {
                        "seq": m.seq,
                        "from": m.sender,
                        "author": role.get(m.sender, m.sender),
                        "text": redact(m.text),
                    }
                    for m in await store.messages(conv)
                ],
            }
        )
    await store.audit(
        member.staff_id, member.role.value, "export", "", {"conversations": str(len(out))}
    )
    return web.json_response({"conversations": out}, headers=NO_STORE)


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
    ),
}


async def privacy(request: web.Request) -> web.Response:
    lang = "en" if request.query.get("lang") == "en" else "nl"
    retention = request.app[SETTINGS].retention
    title, lines = PRIVACY[lang]
    days, stats_days = f"{retention.transcripts_days:g}", f"{retention.statistics_days:g}"
    items = "".join(f"<li>{line.format(days=days, stats_days=stats_days)}</li>" for line in lines)
    body = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title}</title><link rel="stylesheet" href="/static/common/base.css">'
        f"</head><body><main><h1>{title}</h1><ul>{items}</ul>"
        f'<p><a href="/?lang={lang}">Terug / Back</a></p></main></body></html>'
    )
    return web.Response(text=body, content_type="text/html", headers=NO_STORE)


class StoreCollector:
    """Metrics read from Redis at scrape time: right across processes and machines."""

    def __init__(self, store: Store, now: float) -> None:
        self.store = store
        self.values: dict[str, Any] = {}
        self.now = now

    async def load(self) -> None:
        s, k = self.store, self.store.keys
        states: dict[str, int] = {}
        for account in await s.all_accounts():
            state = (await s.staff_state(account["id"])).get("state", "offline")
            states[state] = states.get(state, 0) + 1
        self.values = {
            "waiting": await s.waiting_count(),
            "active": int(await s.r.scard(k.active)),
            "states": states,
            "counters": await s.counters(),
            "waits": [
                float(f["waited"])
                for f in await s.facts_between(self.now - 86400, self.now)
                if f.get("abandoned") != "1" and f.get("waited")
            ],
        }

    def collect(self) -> Any:
        v = self.values
        yield GaugeMetricFamily("chat_visitors_waiting", "Visitors waiting now", v["waiting"])
        yield GaugeMetricFamily(
            "chat_conversations_active", "Conversations going on now", v["active"]
        )
        staff = GaugeMetricFamily("chat_counsellors", "Staff by state", labels=["state"])
        for state in ("available", "paused", "offline"):
            staff.add_metric([state], v["states"].get(state, 0))
        yield staff
        counters = v["counters"]
        yield CounterMetricFamily("chat_messages", "Messages stored", counters.get("messages", 0))
        rejected = CounterMetricFamily(
            "chat_frames_rejected", "Frames answered with an error", labels=["code"]
        )
        for name, count in sorted(counters.items()):
            if name.startswith("rejected:"):
                rejected.add_metric([name.split(":", 1)[1]], count)
        yield rejected
        waits = sorted(v["waits"])
        buckets = [(str(b), sum(1 for w in waits if w <= b)) for b in WAIT_BUCKETS]
        buckets.append(("+Inf", len(waits)))
        yield HistogramMetricFamily(
            "chat_wait_seconds",
            "Waits of visitors helped, last 24 h",
            buckets=buckets,
            sum_value=sum(waits),
        )


async def metrics(request: web.Request) -> web.Response:
    collector = StoreCollector(request.app[STORE], time.time())
    await collector.load()
    registry = CollectorRegistry()
    registry.register(collector)
    return web.Response(
        body=generate_latest(registry),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/api/stats", get_stats)
    app.router.add_get("/api/stats.csv", get_stats_csv)
    app.router.add_get("/api/stats/chart/{name}.svg", get_chart)
    app.router.add_get("/stats", stats_page)
    app.router.add_get("/api/export", export)
    app.router.add_get("/privacy", privacy)
    app.router.add_get("/metrics", metrics)
