"""What the model benchmarks share: the run and dataset arguments, an evaluation set of the
run's rendered data, timing that interleaves the forms compared, and where results are written.

Interleaving matters on a shared or throttled machine: the same model's answer p50 read 3.2 and
2.3 ms in two consecutive evaluations here (2026-12-04); timed in alternating rounds in one
process, machine noise hits every form compared alike.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from p2l3d_core import storage
from p2l3d_core.dataset.shards import load_table
from p2l3d_core.evaluation.methods import EvalSet
from p2l3d_core.evaluation.run import EVAL_COLUMNS


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with ``--run`` and ``--data``, the module docstring as its help."""
    p = argparse.ArgumentParser(description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a run folder written by jobs/distill.py")
    p.add_argument("--data", default=None, help="rendered dataset (default RUN/dataset)")
    return p


def eval_set(args: argparse.Namespace, poses: int | None, split: str = "test") -> EvalSet:
    """``poses`` rows drawn from ``split`` of ``--data`` (default ``RUN/dataset``), as the
    evaluation draws them."""
    uri = args.data or storage.join(args.run, "dataset")
    return EvalSet.from_table(split, load_table(uri, split, EVAL_COLUMNS), poses)


def interleaved(calls: dict[str, Callable[[], object]], rounds: int, per_round: int
                ) -> dict[str, dict[str, float]]:
    """Median and fastest per-call ms of each of ``calls``, alternating which goes first
    each round."""
    times: dict[str, list[float]] = {k: [] for k in calls}
    for r in range(rounds):
        for name in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            t0 = time.perf_counter()
            for _ in range(per_round):
                calls[name]()
            times[name].append((time.perf_counter() - t0) / per_round * 1e3)
    return {k: {"median_ms": float(np.median(v)), "fastest_ms": float(np.min(v))}
            for k, v in times.items()}


def write_results(name: str, payload: dict) -> Path:
    """``payload`` as ``benchmarks/results/<name>.json``; says where."""
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {out}")
    return out
