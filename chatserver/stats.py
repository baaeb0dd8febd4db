"""Statistics from anonymous facts only (times, counts, topic, entry, rating). Pure.

A fact is what :meth:`Service.record_fact` keeps of an ended conversation: no text and no
nickname, so statistics outlive the transcripts. Days and hours are counted in the
helpline's own time zone (``[hours] timezone``), not in UTC.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from statistics import fmean, median, quantiles
from typing import Any

#: An entry (``hello.entry``, the referring site) is kept only when it is one of the
#: configured labels (``[server] allowed_entries``) and looks like a label.
ENTRY_PATTERN = re.compile(r"[a-z0-9-]{1,40}")
OTHER_ENTRY = "other"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def safe_entry(value: str | None, allowed: Iterable[str] = ()) -> str:
    """The entry as kept: itself when it is a safe label named in ``allowed``
    (``[server] allowed_entries``), ``""`` when there was none, else ``"other"``. With no
    list every entry is "other": a label-like entry may still be a phone number or a name
    (``0612345678``, ``jan-de-vries-utrecht``), so only the operator's own labels are kept."""
    if not value:
        return ""
    if not ENTRY_PATTERN.fullmatch(value) or value not in tuple(allowed):
        return OTHER_ENTRY
    return value


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(quantiles(values, n=100, method="inclusive")[q - 1], 1)


def _spread(values: list[float]) -> dict[str, float | None]:
    return {"p50": _pct(values, 50), "p90": _pct(values, 90)}


def compute(
    facts: list[dict[str, str]], zone: tzinfo = UTC, allowed_entries: Iterable[str] = ()
) -> dict[str, Any]:
    allowed = tuple(allowed_entries)
    served = [f for f in facts if f.get("abandoned") != "1"]
    abandoned = [f for f in facts if f.get("abandoned") == "1"]
    waits = [float(f["waited"]) for f in served if f.get("waited")]
    abandoned_waits = [float(f["waited"]) for f in abandoned if f.get("waited")]
    durations = [float(f["duration"]) for f in served if f.get("duration")]
    ratings = [int(f["survey_rating"]) for f in facts if f.get("survey_rating")]
    understood = [f["survey_understood"] == "1" for f in facts if f.get("survey_understood")]
    per_day: Counter[str] = Counter()
    week = [[0] * 24 for _ in range(7)]
    for f in facts:
        when = datetime.fromtimestamp(float(f.get("created") or f["ended"]), zone)
        per_day[when.date().isoformat()] += 1
        week[when.weekday()][when.hour] += 1
    topics = Counter(f["topic"] for f in facts if f.get("topic"))
    entries = Counter(e for e in (safe_entry(f.get("entry"), allowed) for f in facts) if e)
    return {
        "conversations_total": len(facts),
        "helped_total": len(served),
        "abandoned_total": len(abandoned),
        "abandoned_share": round(len(abandoned) / len(facts), 3) if facts else None,
        "abandoned_wait_seconds": _spread(abandoned_waits),
        "wait_seconds": _spread(waits),
        "duration_seconds": _spread(durations),
        "topics": dict(topics.most_common(10)),
        "entries": dict(entries.most_common()),
        "crisis_total": sum(1 for f in facts if f.get("crisis") == "1"),
        "survey": {
            "responses": len(ratings),
            "rating_mean": round(fmean(ratings), 2) if ratings else None,
            "understood_share": (
                round(sum(understood) / len(understood), 3) if understood else None
            ),
        },
        "per_day": dict(sorted(per_day.items())),
        "per_hour_of_week": week,
        "median_wait_seconds": median(waits) if waits else None,
    }


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def csv_rows(stats: dict[str, Any]) -> list[list[str]]:
    """Every figure in one long table: ``measure,key,value`` (key empty for a single value)."""
    rows = [["measure", "key", "value"]]
    for name, value in stats.get("period", {}).items():
        rows.append(["period", name, _cell(value)])
    for name in ("conversations_total", "helped_total", "abandoned_total", "abandoned_share"):
        rows.append([name, "", _cell(stats[name])])
    rows.append(["crisis_total", "", _cell(stats["crisis_total"])])
    for name in ("wait_seconds", "abandoned_wait_seconds", "duration_seconds"):
        rows += [[name, q, _cell(v)] for q, v in stats[name].items()]
    rows += [["survey", k, _cell(v)] for k, v in stats["survey"].items()]
    rows += [["topic", k, str(v)] for k, v in stats["topics"].items()]
    rows += [["entry", k, str(v)] for k, v in stats["entries"].items()]
    rows += [["per_day", k, str(v)] for k, v in stats["per_day"].items()]
    for d, hours in enumerate(stats["per_hour_of_week"]):
        rows += [
            ["per_hour_of_week", f"{WEEKDAYS[d]}-{h:02d}", str(n)] for h, n in enumerate(hours)
        ]
    return rows


def bar_chart_svg(title: str, data: dict[str, int], width: int = 640, height: int = 240) -> str:
    """A plain, accessible SVG bar chart (no script, no external font) that scales to its
    container: a viewBox and ``width="100%"``, never a fixed pixel width."""

    def esc(text: str) -> str:
        return html.escape(text, quote=True)

    n = max(1, len(data))
    top = max(data.values(), default=0) or 1
    bar = (width - 40) / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" '
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMidYMid meet" role="img" '
        f'aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for i, (label, value) in enumerate(data.items()):
        h = (height - 60) * value / top
        x = 30 + i * bar
        parts.append(
            f'<rect x="{x:.1f}" y="{height - 30 - h:.1f}" width="{bar * 0.8:.1f}" '
            f'height="{h:.1f}" fill="#4338ca"><title>{esc(label)}: {value}</title></rect>'
        )
        if n <= 31:
            parts.append(
                f'<text x="{x + bar * 0.4:.1f}" y="{height - 12}" font-size="10" '
                f'text-anchor="middle" fill="#1f2937">{esc(label[-5:])}</text>'
            )
    parts.append(f'<text x="10" y="18" font-size="14" fill="#111827">{esc(title)}</text></svg>')
    return "".join(parts)
