"""One model's accuracy per question family on every set of an evaluation, side by side: the
synthetic test split beside each real 3D set (issue 27), as markdown.

    .venv/bin/python benchmarks/real_sets_table.py runs/quickstart/report/report.json \
        [--method student] [--method teacher]

Rows: overall VQA, geometry (every family but action), depth questions, each family, caption
precision and BLEU-4; columns: the sets, test first. A family a set asks nothing of is "-".
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

ROWS = [("VQA", "vqa_accuracy"), ("VQA geometry", "vqa_geometry_accuracy"),
        ("VQA depth", "vqa_depth_accuracy"), ("VQA action", "vqa_action_accuracy")]
TAIL = [("caption precision", "caption_precision"), ("BLEU-4", "BLEU-4")]


def table(report: dict, method: str) -> str:
    sets = sorted(report["sets"], key=lambda s: (s != "test", s))
    scores = {s: report["sets"][s]["methods"].get(method, {}) for s in sets}
    families = sorted({k.split("/", 1)[1] for m in scores.values() for k in m
                       if k.startswith("vqa_family/")} - {"action"})
    rows = ROWS + [(f"  {f}", f"vqa_family/{f}") for f in families] + TAIL
    sizes = {s: report["sets"][s].get("poses", "?") for s in sets}
    out = [f"| {method} | " + " | ".join(f"{s} ({sizes[s]})" for s in sets) + " |",
           "| --- |" + " --- |" * len(sets)]
    for label, key in rows:
        cells = [scores[s].get(key) for s in sets]
        out.append(f"| {label} | " + " | ".join(
            "-" if v is None or math.isnan(v) else f"{v:.3f}" for v in cells) + " |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", type=Path, help="an evaluation's report.json")
    p.add_argument("--method", action="append", default=None)
    args = p.parse_args()
    report = json.loads(args.report.read_text())
    for method in args.method or ["student"]:
        print(table(report, method) + "\n")


if __name__ == "__main__":
    main()
