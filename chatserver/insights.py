"""HTTP for insight without surveillance: statistics, export, metrics, privacy statement.

Statistics and metrics come from anonymous facts and counters only: no nickname, no text,
no address in any answer or label.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from chatserver import insight_pages, loopwatch, stats
from chatserver.appkeys import SETTINGS, STORE
from chatserver.config import Settings
from chatserver.review import error, staff_or_error
from chatserver.store import WAIT_BUCKETS, Store
from moderation import redact

NO_STORE = {"Cache-Control": "no-store"}
DEFAULT_DAYS = 30
MAX_DAYS = 3660
#: Periods lie within these days (far dates would overflow the time arithmetic).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)
STAFF_STATES = ("available", "paused", "wrapup", "offline")


def zone_of(settings: Settings) -> ZoneInfo:
    """The helpline's time zone: ``[hours] timezone`` (default Europe/Amsterdam)."""
    return ZoneInfo(str((settings.hours or {}).get("timezone", "Europe/Amsterdam")))


def _lang(request: web.Request) -> str:
    return "en" if request.query.get("lang") == "en" else "nl"


class Period:
    """Whole local days ``start``..``end`` (inclusive) in the helpline's time zone."""

    def __init__(self, start: date, end: date, zone: ZoneInfo) -> None:
        self.start, self.end, self.zone = start, end, zone
        self.begin = datetime.combine(start, datetime.min.time(), zone).timestamp()
        self.finish = datetime.combine(end + timedelta(days=1), datetime.min.time(), zone)
        self.finish_ts = self.finish.timestamp()

    def describe(self) -> dict[str, str]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "timezone": str(self.zone),
        }


def _period(request: web.Request) -> Period | web.Response:
    zone = zone_of(request.app[SETTINGS])
    query = request.query
    try:
        end = date.fromisoformat(query["to"]) if query.get("to") else datetime.now(zone).date()
        start = date.fromisoformat(query["from"]) if query.get("from") else None
    except ValueError:
        return error(400, "invalid", "from/to must be dates: YYYY-MM-DD")
    if any(not FIRST_DAY <= d <= LAST_DAY for d in (end, start) if d is not None):
        return error(400, "invalid", f"from/to must lie between {FIRST_DAY} and {LAST_DAY}")
    if start is None:
        start = max(FIRST_DAY, end - timedelta(days=DEFAULT_DAYS - 1))
    if start > end:
        return error(400, "invalid", "from must not be after to")
    if (end - start).days > MAX_DAYS:
        return error(400, "invalid", f"a period is at most {MAX_DAYS} days")
    return Period(start, end, zone)


async def _stats(request: web.Request) -> tuple[dict[str, Any], Period] | web.Response:
    member = await staff_or_error(request, lambda m: m.reads_statistics)
    if isinstance(member, web.Response):
        return member
    period = _period(request)
    if isinstance(period, web.Response):
        return period
    settings = request.app[SETTINGS]
    facts = await request.app[STORE].facts_between(period.begin, period.finish_ts)
    result = stats.compute(facts, period.zone, settings.server.allowed_entries)
    return {"period": period.describe(), **result}, period


async def get_stats(request: web.Request) -> web.Response:
    got = await _stats(request)
    if isinstance(got, web.Response):
        return got
    return web.json_response(got[0], headers=NO_STORE)


async def get_stats_csv(request: web.Request) -> web.Response:
    got = await _stats(request)
    if isinstance(got, web.Response):
        return got
    result, period = got
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(stats.csv_rows(result))
    name = f"chat-statistics-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
    )


async def get_chart(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ("per-day", "topics", "hour-of-week"):
        return error(404, "not_found", "no such chart")
    got = await _stats(request)
    if isinstance(got, web.Response):
        return got
    result = got[0]
    title = insight_pages.chart_title(name, _lang(request))
    if name == "per-day":
        data = result["per_day"]
    elif name == "topics":
        data = result["topics"]
    else:
        data = {f"{h:02d}": sum(day[h] for day in result["per_hour_of_week"]) for h in range(24)}
    svg = stats.bar_chart_svg(title, data)
    return web.Response(text=svg, content_type="image/svg+xml", headers=NO_STORE)


async def stats_page(request: web.Request) -> web.Response:
    got = await _stats(request)
    if isinstance(got, web.Response):
        if got.status == 400:  # a bad period: a page that says why, with the form again
            reason = json.loads(cast(bytes, got.body))["message"]
            page = insight_pages.bad_period_page(reason, _lang(request))
            return web.Response(text=page, status=400, content_type="text/html", headers=NO_STORE)
        return got
    result, period = got
    body = insight_pages.stats_page(
        result, period.start, period.end, str(period.zone), _lang(request)
    )
    return web.Response(text=body, content_type="text/html", headers=NO_STORE)


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(text=insight_pages.STYLESHEET, content_type="text/css")


ROLE_NAMES = {"visitor": "Bezoeker", "counsellor": "Hulpverlener", "system": "Systeem"}
STAFF_ROLE_NAMES = {"counsellor": "Hulpverlener", "supervisor": "Begeleider", "admin": "Begeleider"}


def name_replacer(names: dict[str, str]) -> re.Pattern[str] | None:
    """One case-insensitive, word-bounded pattern for every name (longest first)."""
    usable = sorted((n for n in names if len(n.strip()) >= 2), key=len, reverse=True)
    if not usable:
        return None
    alternatives = "|".join(re.escape(n.strip()) for n in usable)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def anonymise(text: str, pattern: re.Pattern[str] | None, names: dict[str, str]) -> str:
    """Moderation redaction, then every known name replaced by its role."""
    text = redact(text)
    if pattern is None:
        return text
    lookup = {n.strip().casefold(): role for n, role in names.items()}
    return pattern.sub(lambda m: lookup.get(m.group(0).casefold(), "[naam]"), text)


async def export(request: web.Request) -> web.Response:
    """Ended conversations for training: personal data redacted, names replaced by roles."""
    member = await staff_or_error(request, lambda m: m.supervises)
    if isinstance(member, web.Response):
        return member
    period = _period(request)
    if isinstance(period, web.Response):
        return period
    store = request.app[STORE]
    staff_names: dict[str, str] = {}
    for account in await store.all_accounts():
        role = STAFF_ROLE_NAMES.get(account.get("role", ""), "Hulpverlener")
        for name in (account.get("display_name", ""), account.get("username", "")):
            if name:
                staff_names[name] = role
    out = []
    for conv in await store.ended_ids(period.begin, period.finish_ts):
        meta = await store.conversation(conv)
        if meta is None:
            continue  # text already past retention
        names = dict(staff_names)
        if meta.get("counsellor_name"):
            names[meta["counsellor_name"]] = "Hulpverlener"
        if meta.get("nickname"):
            names[meta["nickname"]] = "Bezoeker"
        pattern = name_replacer(names)
        out.append(
            {
                "topic": meta.get("topic") or None,
                "messages": [
                    {
                        "seq": m.seq,
                        "from": m.sender,
                        "author": ROLE_NAMES.get(m.sender, "Hulpverlener"),
                        "text": anonymise(m.text, pattern, names),
                    }
                    for m in await store.messages(conv)
                ],
            }
        )
    await store.audit(
        member.staff_id, member.role.value, "export", "", {"conversations": str(len(out))}
    )
    return web.json_response({"conversations": out}, headers=NO_STORE)


async def privacy(request: web.Request) -> web.Response:
    retention = request.app[SETTINGS].retention
    body = insight_pages.privacy_page(
        _lang(request), retention.transcripts_days, retention.statistics_days
    )
    return web.Response(text=body, content_type="text/html", headers=NO_STORE)


class StoreCollector:
    """Metrics read from Redis at scrape time: right across processes and machines.

    Counters and the wait histogram are cumulative values kept in Redis (incremented once
    when the event happens), so they never go down, whichever process answers.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.values: dict[str, Any] = {}

    async def load(self) -> None:
        s, k = self.store, self.store.keys
        states: dict[str, int] = {}
        accounts = await s.all_accounts()
        pipe = s.r.pipeline(transaction=False)
        for account in accounts:
            pipe.hget(k.staff_state(account["id"]), "state")
        for state in await pipe.execute() if accounts else []:
            states[state or "offline"] = states.get(state or "offline", 0) + 1
        self.values = {
            "waiting": await s.waiting_count(),
            "active": int(await s.r.scard(k.active)),
            "states": states,
            "counters": await s.counters(),
            "waits": await s.wait_histogram(),
        }

    def collect(self) -> Any:
        v = self.values
        yield GaugeMetricFamily("chat_visitors_waiting", "Visitors waiting now", v["waiting"])
        yield GaugeMetricFamily(
            "chat_conversations_active", "Conversations going on now", v["active"]
        )
        staff = GaugeMetricFamily("chat_counsellors", "Staff by state", labels=["state"])
        for state in sorted(set(STAFF_STATES) | set(v["states"])):
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
        yield CounterMetricFamily(
            "chat_purge_runs",
            "Retention purges run (one per interval)",
            counters.get("purge_runs", 0),
        )
        yield CounterMetricFamily(
            "chat_conversations_purged",
            "Conversations whose text retention deleted",
            counters.get("purged_conversations", 0),
        )
        waits = v["waits"]
        buckets = [(repr(b), waits["buckets"].get(repr(b), 0)) for b in WAIT_BUCKETS]
        buckets.append(("+Inf", waits["count"]))
        yield HistogramMetricFamily(
            "chat_wait_seconds",
            "Waits of visitors helped (from joining the queue to a counsellor)",
            buckets=buckets,
            sum_value=waits["sum"],
        )


async def metrics(request: web.Request) -> web.Response:
    collector = StoreCollector(request.app[STORE])
    await collector.load()
    registry = CollectorRegistry()
    registry.register(collector)
    registry.register(loopwatch.WATCH)  # this process's loop lag and gc pauses
    return web.Response(
        body=generate_latest(registry),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/api/stats", get_stats)
    app.router.add_get("/api/stats.csv", get_stats_csv)
    app.router.add_get("/api/stats/chart/{name}.svg", get_chart)
    app.router.add_get("/stats", stats_page)
    app.router.add_get(insight_pages.STYLESHEET_PATH, stylesheet)
    app.router.add_get("/api/export", export)
    app.router.add_get("/privacy", privacy)
    app.router.add_get("/metrics", metrics)
