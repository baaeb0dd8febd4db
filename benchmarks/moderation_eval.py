"""Crisis-signal quality on the labelled set: recall, precision, misses, timing.

python -m benchmarks.moderation_eval
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from moderation import analyse

DATA = (
    Path(__file__).resolve().parent.parent / "tests" / "moderation" / "data" / "crisis_labelled.tsv"
)


def load() -> list[tuple[str, str, str]]:
    with DATA.open(encoding="utf-8") as fh:
        return [(r["label"], r["lang"], r["text"]) for r in csv.DictReader(fh, delimiter="\t")]


def evaluate(rows: list[tuple[str, str, str]]) -> dict[str, object]:
    tp = fp = fn = tn = 0
    misses, false_alarms = [], []
    for label, _lang, text in rows:
        hit = analyse(text).crisis
        if label == "crisis" and hit:
            tp += 1
        elif label == "crisis":
            fn += 1
            misses.append(text)
        elif hit:
            fp += 1
            false_alarms.append(text)
        else:
            tn += 1
    return {
        "recall": tp / max(1, tp + fn),
        "precision": tp / max(1, tp + fp),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "misses": misses,
        "false_alarms": false_alarms,
    }


def main() -> None:
    rows = load()
    for lang in ("nl", "en", None):
        subset = [r for r in rows if lang is None or r[1] == lang]
        r = evaluate(subset)
        name = lang or "all"
        print(
            f"{name:>3}: n={len(subset):3d} recall={r['recall']:.3f} "
            f"precision={r['precision']:.3f} (tp={r['tp']} fp={r['fp']} fn={r['fn']})"
        )
    r = evaluate(rows)
    for text in r["misses"]:  # type: ignore[attr-defined]
        print(f"  missed:      {text}")
    for text in r["false_alarms"]:  # type: ignore[attr-defined]
        print(f"  false alarm: {text}")
    texts = [t for _, _, t in rows] * 20
    began = time.perf_counter()
    for text in texts:
        analyse(text)
    per_call = (time.perf_counter() - began) / len(texts)
    print(f"analyse(): {per_call * 1e6:.0f} µs per message (mean over {len(texts)})")


if __name__ == "__main__":
    main()
