"""One model's accuracy per question family on every set of an evaluation, side by side: the
synthetic test split beside each real 3D set (issue 27), as markdown.

    .venv/bin/python benchmarks/real_sets_table.py runs/quickstart/report/report.json \
        [--method student] [--method teacher] [--versus baseline_2d]

Rows: overall VQA, geometry (every family but action), depth questions, each family, caption
precision and BLEU-4; columns: the sets, test first. A family a set asks nothing of is "-".
Where the run trained the method with several seeds (``--seeds``), each cell is the mean ± the
standard deviation over them.
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
                       if k.startswith("vqa_family/") and not k.endswith("_std")} - {"action"})
    rows = ROWS + [(f"  {f}", f"vqa_family/{f}") for f in families] + TAIL
    sizes = {s: report["sets"][s].get("poses", "?") for s in sets}
    out = [f"| {method} | " + " | ".join(f"{s} ({sizes[s]})" for s in sets) + " |",
           "| --- |" + " --- |" * len(sets)]
    for label, key in rows:
        out.append(f"| {label} | " + " | ".join(cell(scores[s], key) for s in sets) + " |")
    return "\n".join(out)


def cell(scores: dict, key: str) -> str:
    """A metric, with its spread over the seeds where the run trained several."""
    value, spread = scores.get(key), scores.get(f"{key}_std")
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.3f}" + ("" if spread is None else f" ± {spread:.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", type=Path, help="an evaluation's report.json")
    p.add_argument("--method", action="append", default=None,
                   help="a method of the report (repeatable; default student)")
    p.add_argument("--versus", default=None, metavar="METHOD",
                   help="also print the (first) method's lead over METHOD on depth questions")
    args = p.parse_args()
    report = json.loads(args.report.read_text())
    for method in args.method or ["student"]:
        print(table(report, method) + "\n")
    if args.versus:
        print(lead(report, args.method[0] if args.method else "student", args.versus))


def lead(report: dict, method: str, other: str, key: str = "vqa_depth_accuracy") -> str:
    """One line per set: ``method``'s lead over ``other`` on ``key``, in points (issue 27's
    target: the student leads baseline_2d by 5 on depth questions on the real sets)."""
    out = [f"{method} - {other}, {key} (points):"]
    for name in sorted(report["sets"], key=lambda s: (s != "test", s)):
        methods = report["sets"][name]["methods"]
        a, b = methods.get(method, {}).get(key), methods.get(other, {}).get(key)
        if a is not None and b is not None and not (math.isnan(a) or math.isnan(b)):
            out.append(f"  {name}: {100 * (a - b):+.1f}")
    return "\n".join(out)


if __name__ == "__main__":
    main()
