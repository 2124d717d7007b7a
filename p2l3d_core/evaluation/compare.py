"""Score methods on evaluation sets and gather the comparison the paper makes.

``score_method`` runs one method on one set; ``compare_latency`` times all methods together;
``aggregate`` turns runs over several seeds into mean and spread; ``check_targets`` states
each target of the comparison as met or missed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import torch

from p2l3d_core.evaluation.claims import caption_precision
from p2l3d_core.evaluation.methods import EvalSet
from p2l3d_core.evaluation.metrics import caption_scores, interleaved_latency, vqa_scores


def score_method(method, data: EvalSet, meteor: bool = True) -> dict[str, float]:
    """VQA, caption and retrieval metrics of ``method`` on ``data``. Latency is measured for
    all methods together (:func:`compare_latency`). Caption precision checks what each caption
    claims against the set's true 3D (``claims.py``); BLEU and CIDEr only score its wording."""
    preds = method.predict(data)
    out = vqa_scores(preds.answers, data.qa_answer, data.qa_family, data.qa_needs_depth)
    # Rules on lifted 3D leave the action (no recogniser) and unmeasurable codes unanswered: wrong.
    out["vqa_unanswered"] = sum(not a for a in preds.answers) / max(len(preds.answers), 1)
    out.update(caption_scores(preds.captions, data.captions, meteor=meteor))
    out.update(caption_precision(preds.captions, data.joints_3d, data.camera_positions,
                                 data.actions))
    out.update(preds.retrieval())
    return out


def compare_latency(methods: dict, data: EvalSet, samples: int = 30, rounds: int = 5
                    ) -> dict[str, dict[str, float]]:
    """Each method's latency at batch 1 on one CPU thread, in interleaved rounds
    (:func:`interleaved_latency`): a caption of one of ``samples`` poses (``latency_*``) and one
    answer to one of ``samples`` questions spread over the set, so every family is among them
    (``answer_latency_*``; each question asked once untimed first, so its text features are
    cached as in a running service)."""
    poses, asked = min(samples, len(data)), data.spread_questions(samples)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        captions = interleaved_latency({name: (lambda i, m=m: m.predict_one(data, i))
                                        for name, m in methods.items()}, poses, rounds)
        answers = interleaved_latency({name: (lambda k, m=m: m.answer_one(data, asked[k]))
                                       for name, m in methods.items()}, len(asked), rounds,
                                      name="answer_latency")
    finally:
        torch.set_num_threads(threads)
    return {name: {**captions.get(name, {}), **answers.get(name, {})} for name in methods}


def aggregate(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over runs (seeds); ``<metric>_std`` where there are two or more."""
    keys = sorted(set().union(*runs))
    out: dict[str, float] = {"runs": float(len(runs))}
    for k in keys:
        values = [r[k] for r in runs if k in r]
        out[k] = statistics.fmean(values)
        if len(values) > 1:
            out[f"{k}_std"] = statistics.stdev(values)
    return out


def _relative(a: float, b: float) -> float:
    return (a - b) / b if b else float("inf")


TARGETS: list[tuple[str, Callable[[dict], tuple[float, float] | None], str]] = [
    ("student_vs_baseline_2d_depth_points",
     lambda m: (100 * (m["student"]["vqa_depth_accuracy"]
                       - m["baseline_2d"]["vqa_depth_accuracy"]), 5.0),
     "student over baseline_2d on needs_depth questions, points (mean over seeds) >= 5"),
    ("student_vs_baseline_2d_no3d_vqa_relative_pct",
     lambda m: (100 * _relative(m["student"]["vqa_accuracy"],
                                m["baseline_2d_no3d"]["vqa_accuracy"]), 20.8),
     "student over baseline_2d_no3d, VQA accuracy, relative % >= 20.8 (paper)"),
    ("student_vs_baseline_2d_no3d_bleu4_relative_pct",
     lambda m: (100 * _relative(m["student"]["BLEU-4"], m["baseline_2d_no3d"]["BLEU-4"]), 44.1),
     "student over baseline_2d_no3d, BLEU-4, relative % >= 44.1 (paper)"),
    ("student_vs_coords_2d_depth_points",
     lambda m: (100 * (m["student"]["vqa_depth_accuracy"]
                       - m["coords_2d"]["vqa_depth_accuracy"]), 0.0),
     "student depth accuracy at least coords_2d's, points >= 0"),
    ("student_vs_lifter_depth_points",
     lambda m: (100 * (m["student"]["vqa_depth_accuracy"]
                       - m["lifter"]["vqa_depth_accuracy"]), 1e-9),
     "student depth accuracy above lifter's, points > 0"),
    ("lifter_vs_student_latency_ratio",
     lambda m: (m["lifter"]["latency_p50_ms"] / m["student"]["latency_p50_ms"], 1.0 + 1e-9),
     "student faster than the lifter pipeline: lifter p50 / student p50 > 1"),
    ("lifter_vs_student_answer_latency_ratio",
     lambda m: (m["lifter"]["answer_latency_p50_ms"] / m["student"]["answer_latency_p50_ms"],
                1.0 + 1e-9),
     ("answering one question, student faster than the lifter pipeline: "
      "lifter p50 / student p50 > 1")),
    ("student_of_teacher_vqa_pct",
     lambda m: (100 * m["student"]["vqa_accuracy"] / m["teacher"]["vqa_accuracy"], 90.0),
     "student VQA accuracy at least 90 % of the teacher's"),
]


def check_targets(methods: dict[str, dict[str, float]]) -> dict[str, dict]:
    """Each target with its measured value, threshold and ``met``; targets whose methods were
    not evaluated are left out."""
    out = {}
    for name, measure, text in TARGETS:
        try:
            value, threshold = measure(methods)
        except KeyError:
            continue
        out[name] = {"value": value, "threshold": threshold, "met": bool(value >= threshold),
                     "target": text}
    return out
