import math
import statistics

import pytest

from p2l3d_core.evaluation.compare import TARGETS, aggregate, check_targets


def test_aggregate_means_and_spreads_over_runs():
    runs = [{"vqa_accuracy": 0.5, "BLEU-4": 0.2},
            {"vqa_accuracy": 0.7, "BLEU-4": 0.4},
            {"vqa_accuracy": 0.9, "BLEU-4": 0.3, "latency_p50_ms": 4.0}]
    out = aggregate(runs)
    assert out["runs"] == 3.0
    assert out["vqa_accuracy"] == pytest.approx(0.7)
    assert out["vqa_accuracy_std"] == pytest.approx(0.2)  # sample std of 0.5, 0.7, 0.9
    assert out["BLEU-4"] == pytest.approx(0.3)
    assert out["BLEU-4_std"] == pytest.approx(statistics.stdev([0.2, 0.4, 0.3]))
    # a metric only one run has: its value, no spread
    assert out["latency_p50_ms"] == pytest.approx(4.0)
    assert "latency_p50_ms_std" not in out


def test_aggregate_two_runs():
    out = aggregate([{"a": 1.0}, {"a": 3.0}])
    assert out == pytest.approx({"runs": 2.0, "a": 2.0, "a_std": math.sqrt(2.0)})


def test_aggregate_one_run_has_no_std():
    out = aggregate([{"vqa_accuracy": 0.6, "CIDEr": 1.2}])
    assert out == pytest.approx({"runs": 1.0, "vqa_accuracy": 0.6, "CIDEr": 1.2})
    assert not any(k.endswith("_std") for k in out)


def _methods():
    return {
        "student": {"vqa_accuracy": 0.6, "vqa_depth_accuracy": 0.55, "BLEU-4": 0.30,
                    "latency_p50_ms": 2.0,
                    "answer_latency_p50_ms": 4.0},
        "teacher": {"vqa_accuracy": 0.7, "vqa_depth_accuracy": 0.8, "BLEU-4": 0.4,
                    "latency_p50_ms": 9.0},
        "baseline_2d": {"vqa_accuracy": 0.5, "vqa_depth_accuracy": 0.45, "BLEU-4": 0.25},
        "baseline_2d_no3d": {"vqa_accuracy": 0.5, "vqa_depth_accuracy": 0.4, "BLEU-4": 0.20},
        "coords_2d": {"vqa_accuracy": 0.55, "vqa_depth_accuracy": 0.55, "BLEU-4": 0.28},
        "lifter": {"vqa_accuracy": 0.58, "vqa_depth_accuracy": 0.55, "BLEU-4": 0.5,
                   "latency_p50_ms": 5.0,
                   "answer_latency_p50_ms": 1.0},
    }


def test_check_targets_marks_met_and_missed():
    out = check_targets(_methods())
    assert set(out) == {name for name, _, _ in TARGETS}
    expect = {
        # name: (value, threshold, met)
        "student_vs_baseline_2d_depth_points": (10.0, 5.0, True),
        "student_vs_baseline_2d_no3d_vqa_relative_pct": (20.0, 20.8, False),
        "student_vs_baseline_2d_no3d_bleu4_relative_pct": (50.0, 44.1, True),
        "student_vs_coords_2d_depth_points": (0.0, 0.0, True),  # equal is enough (>= 0)
        "student_vs_lifter_depth_points": (0.0, 1e-9, False),  # equal is not (> 0)
        "lifter_vs_student_latency_ratio": (2.5, 1.0, True),
        "lifter_vs_student_answer_latency_ratio": (0.25, 1.0, False),
        "student_of_teacher_vqa_pct": (100 * 0.6 / 0.7, 90.0, False),
    }
    for name, (value, threshold, met) in expect.items():
        t = out[name]
        assert t["value"] == pytest.approx(value, abs=1e-9), name
        assert t["threshold"] == pytest.approx(threshold), name
        assert t["met"] is met, name
        assert isinstance(t["target"], str) and t["target"]


def test_check_targets_flip_when_the_student_improves():
    m = _methods()
    m["student"].update(vqa_accuracy=0.66, vqa_depth_accuracy=0.6, latency_p50_ms=6.0,
                        answer_latency_p50_ms=0.5)
    out = check_targets(m)
    assert out["student_vs_baseline_2d_no3d_vqa_relative_pct"]["met"]  # +32 %
    assert out["student_vs_lifter_depth_points"]["met"]  # +5 points
    assert out["student_of_teacher_vqa_pct"]["met"]  # 94 %
    assert not out["lifter_vs_student_latency_ratio"]["met"]  # student now slower
    assert out["lifter_vs_student_answer_latency_ratio"]["met"]  # and answers faster
    assert out["student_vs_baseline_2d_depth_points"]["value"] == pytest.approx(15.0)
    assert out["student_vs_baseline_2d_depth_points"]["met"]


def test_check_targets_leaves_out_targets_of_absent_methods():
    m = _methods()
    del m["lifter"], m["teacher"]
    out = check_targets(m)
    assert set(out) == {"student_vs_baseline_2d_depth_points",
                        "student_vs_baseline_2d_no3d_vqa_relative_pct",
                        "student_vs_baseline_2d_no3d_bleu4_relative_pct",
                        "student_vs_coords_2d_depth_points"}
    assert check_targets({"student": _methods()["student"]}) == {}
    assert check_targets({}) == {}


def test_check_targets_leaves_out_a_target_whose_metric_is_missing():
    m = _methods()
    del m["student"]["latency_p50_ms"]
    out = check_targets(m)
    assert "lifter_vs_student_latency_ratio" not in out
    assert "student_vs_lifter_depth_points" in out


def test_check_targets_zero_baseline_counts_as_infinite_gain():
    m = _methods()
    m["baseline_2d_no3d"]["BLEU-4"] = 0.0
    t = check_targets(m)["student_vs_baseline_2d_no3d_bleu4_relative_pct"]
    assert math.isinf(t["value"]) and t["met"]
