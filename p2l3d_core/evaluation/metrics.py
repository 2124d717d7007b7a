"""Scores of one method on one evaluation set: VQA accuracy, caption metrics, latency.

Caption metrics are pycocoevalcap's own BLEU-1..4, METEOR (Java), ROUGE-L and CIDEr, on text
lower-cased and split on word characters (the PTB tokenizer would need Java for every call).
"""

from __future__ import annotations

import functools
import logging
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

LOG = logging.getLogger(__name__)


ACTION_FAMILY = "action"
"""The family that asks for the action label; every other family asks about the pose's
geometry. Reported apart (``vqa_action_accuracy``, ``vqa_geometry_accuracy``): on real clips the
label is often outside the generator's actions, and one must not hide the other."""


def vqa_scores(predicted: Sequence[str], truth: Sequence[str], families: Sequence[str],
               needs_depth: Sequence[bool]) -> dict[str, float]:
    """Exact-match accuracy overall, on ``needs_depth`` questions, on the others, on the
    geometry families and the action family apart, and per family (``vqa_family/<family>``),
    with the question counts."""
    if not len(predicted) == len(truth) == len(families) == len(needs_depth):
        raise ValueError("predicted, truth, families and needs_depth need one entry per question")
    right = [p.strip().lower() == t.strip().lower() for p, t in zip(predicted, truth)]
    groups: dict[str, list[bool]] = defaultdict(list)
    for ok, family, depth in zip(right, families, needs_depth):
        groups["vqa_accuracy"].append(ok)
        groups["vqa_depth_accuracy" if depth else "vqa_nondepth_accuracy"].append(ok)
        groups["vqa_action_accuracy" if family == ACTION_FAMILY
               else "vqa_geometry_accuracy"].append(ok)
        groups[f"vqa_family/{family}"].append(ok)
    out = {name: sum(v) / len(v) for name, v in groups.items()}
    out["vqa_questions"] = float(len(right))
    out["vqa_depth_questions"] = float(len(groups["vqa_depth_accuracy"]))
    out["vqa_action_questions"] = float(len(groups["vqa_action_accuracy"]))
    return out


def _tokens(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def caption_scores(candidates: Sequence[str], references: Sequence[Sequence[str]],
                   meteor: bool = True) -> dict[str, float]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr of one candidate per sample against its references."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if len(candidates) != len(references) or not candidates:
        raise ValueError("need one candidate and a list of references per sample (at least one)")
    res = {i: [_tokens(c) or "empty"] for i, c in enumerate(candidates)}
    gts = {i: [_tokens(r) for r in refs] or ["empty"] for i, refs in enumerate(references)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"BLEU-{n + 1}": float(b) for n, b in enumerate(bleu)}
    out["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    if meteor:
        try:
            out["METEOR"] = float(_meteor().compute_score(gts, res)[0])
        except (OSError, ValueError, RuntimeError) as err:  # no Java: say so, keep the rest
            LOG.warning("METEOR skipped (it needs Java): %s", err)
    return out


@functools.lru_cache(maxsize=1)
def _meteor():
    """One METEOR scorer per process: each is a Java process that takes seconds to start."""
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


def _percentiles(times: list[float], name: str) -> dict[str, float]:
    times = sorted(times)
    return {f"{name}_p50_ms": statistics.median(times),
            f"{name}_p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))]}


def latency_ms(predict_one: Callable[[int], object], count: int, warmup: int = 3,
               name: str = "latency") -> dict[str, float]:
    """p50 and p90 wall time of ``predict_one(i)`` for ``i`` in ``range(count)`` (batch 1),
    after ``warmup`` untimed calls, as ``<name>_p50_ms`` and ``<name>_p90_ms``."""
    for i in range(min(warmup, count)):
        predict_one(i)
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        predict_one(i)
        times.append(1000.0 * (time.perf_counter() - t0))
    return _percentiles(times, name)


def interleaved_latency(calls: dict[str, Callable[[int], object]], count: int, rounds: int = 5,
                        name: str = "latency") -> dict[str, dict[str, float]]:
    """:func:`latency_ms` of several methods, measured so that they can be compared on a
    shared, noisy machine: one untimed call of every ``i`` first (each method's caches warm,
    as in a running service), then ``rounds`` passes over ``range(count)``, the methods one
    after another in an order reversed every round. A slow spell of the machine then lands on
    one pass of one method, not on all of its calls; p50 and p90 are over all timed calls.
    Why: timed one after another once each, the same model's answer p50 varied 2x between two
    evaluations, and a target compares two methods' latencies."""
    for call in calls.values():
        for i in range(count):
            call(i)
    times: dict[str, list[float]] = {key: [] for key in calls}
    for r in range(rounds):
        for key in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            for i in range(count):
                t0 = time.perf_counter()
                calls[key](i)
                times[key].append(1000.0 * (time.perf_counter() - t0))
    return {key: _percentiles(t, name) for key, t in times.items() if t}
