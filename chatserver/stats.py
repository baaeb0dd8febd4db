"""Statistics from anonymous facts only (times, counts, topic, entry, rating). Pure.

A fact is what :meth:`Service.record_fact` keeps of an ended conversation: no text and no
nickname, so statistics outlive the transcripts.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, tzinfo
from statistics import fmean, median, quantiles
from typing import Any


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(quantiles(values, n=100, method="inclusive")[q - 1], 1)


def compute(facts: list[dict[str, str]], zone: tzinfo = UTC) -> dict[str, Any]:
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
    entries = Counter(f["entry"] for f in facts if f.get("entry"))
    return {
        "conversations_total": len(facts),
        "helped_total": len(served),
        "abandoned_total": len(abandoned),
        "abandoned_wait_seconds": {
            "p50": _pct(abandoned_waits, 50),
            "p90": _pct(abandoned_waits, 90),
        },
        "wait_seconds": {"p50": _pct(waits, 50), "p90": _pct(waits, 90)},
        "duration_seconds": {"p50": _pct(durations, 50), "p90": _pct(durations, 90)},
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


def csv_rows(stats: dict[str, Any]) -> list[list[str]]:
    rows = [["date", "conversations"]]
    rows += [[day, str(n)] for day, n in stats["per_day"].items()]
    return rows


def bar_chart_svg(title: str, data: dict[str, int], width: int = 640, height: int = 240) -> str:
    """A plain, accessible SVG bar chart (no script, no external font)."""

    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    n = max(1, len(data))
    top = max(data.values(), default=0) or 1
    bar = (width - 40) / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">',
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
