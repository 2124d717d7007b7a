import time

import pytest

from p2l3d_core.evaluation.metrics import (
    caption_scores,
    interleaved_latency,
    latency_ms,
    vqa_scores,
)

# --- VQA ---------------------------------------------------------------------------------------


def test_vqa_scores_overall_depth_nondepth_and_family():
    predicted = ["Yes", "  left ", "no", "2", "front", "NOT TOUCHING"]
    truth = ["yes", "Left", "yes", "2", "back", "not touching"]
    families = ["a", "b", "a", "c", "c", "b"]
    depth = [False, True, False, True, True, False]
    # right:   T      T       F     T    F        T
    out = vqa_scores(predicted, truth, families, depth)
    assert out["vqa_accuracy"] == pytest.approx(4 / 6)
    assert out["vqa_depth_accuracy"] == pytest.approx(2 / 3)  # rows 1, 3, 4
    assert out["vqa_nondepth_accuracy"] == pytest.approx(2 / 3)  # rows 0, 2, 5
    assert out["vqa_family/a"] == pytest.approx(1 / 2)
    assert out["vqa_family/b"] == pytest.approx(1.0)
    assert out["vqa_family/c"] == pytest.approx(1 / 2)
    assert out["vqa_questions"] == 6.0
    assert out["vqa_depth_questions"] == 3.0
    assert ({k for k in out if k.startswith("vqa_family/")}
            == {"vqa_family/a", "vqa_family/b", "vqa_family/c"})


def test_vqa_scores_report_the_action_family_apart_from_the_geometry_families():
    predicted = ["walking", "sitting", "bent", "left", "straight"]
    truth = ["walking", "running", "bent", "left", "bent"]
    families = ["action", "action", "joint_bend", "foot_forward", "joint_bend"]
    out = vqa_scores(predicted, truth, families, [False, False, False, True, False])
    assert out["vqa_action_accuracy"] == pytest.approx(1 / 2) == out["vqa_family/action"]
    assert out["vqa_geometry_accuracy"] == pytest.approx(2 / 3)
    assert out["vqa_action_questions"] == 2.0
    no_action = vqa_scores(["bent"], ["bent"], ["joint_bend"], [False])
    assert no_action["vqa_geometry_accuracy"] == 1.0 and no_action["vqa_action_questions"] == 0.0
    assert "vqa_action_accuracy" not in no_action  # nothing asked, no made-up accuracy


def test_vqa_scores_match_ignores_case_and_surrounding_space_only():
    out = vqa_scores([" BENT\t", "left arm", "leftarm"], ["bent", "Left Arm", "left arm"],
                     ["f", "f", "f"], [True, True, True])
    assert out["vqa_accuracy"] == pytest.approx(2 / 3)  # inner space still counts
    assert out["vqa_depth_accuracy"] == pytest.approx(2 / 3)


def test_vqa_scores_without_depth_questions_counts_zero():
    out = vqa_scores(["a", "b"], ["a", "c"], ["x", "y"], [False, False])
    assert out["vqa_accuracy"] == pytest.approx(0.5)
    assert out["vqa_nondepth_accuracy"] == pytest.approx(0.5)
    assert out["vqa_depth_questions"] == 0.0
    assert "vqa_depth_accuracy" not in out  # no division by zero, no made-up accuracy


@pytest.mark.parametrize("lengths", [(2, 3, 3, 3), (3, 2, 3, 3), (3, 3, 2, 3), (3, 3, 3, 2)])
def test_vqa_scores_mismatched_lengths_raise(lengths):
    p, t, f, d = lengths
    with pytest.raises(ValueError):
        vqa_scores(["a"] * p, ["a"] * t, ["f"] * f, [False] * d)


# --- captions ----------------------------------------------------------------------------------

REFS = [
    ["the person raises the left arm above the head", "someone lifts the left hand high"],
    ["the person squats with both knees bent deeply", "a crouching person with bent knees"],
    ["the person stands on the right leg and leans forward", "balancing on one leg leaning ahead"],
]


def test_caption_scores_identical_candidate_is_perfect_bleu_and_positive_cider():
    cands = [r[0] for r in REFS]
    out = caption_scores(cands, REFS, meteor=False)
    assert set(out) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"}
    for n in range(1, 5):
        assert out[f"BLEU-{n}"] == pytest.approx(1.0, abs=1e-6)
    assert out["ROUGE-L"] == pytest.approx(1.0, abs=1e-6)
    assert out["CIDEr"] > 1.0


def test_caption_scores_tokenise_case_and_punctuation_away():
    cands = ["The Person RAISES the left-arm, above the head!", REFS[1][0].upper(),
             REFS[2][0] + "."]
    out = caption_scores(cands, REFS, meteor=False)
    for n in range(1, 5):
        assert out[f"BLEU-{n}"] == pytest.approx(1.0, abs=1e-6)


def test_caption_scores_unrelated_candidate_scores_lower():
    good = caption_scores([r[0] for r in REFS], REFS, meteor=False)
    bad = caption_scores(["purple elephants dance quietly tonight"] * 3, REFS, meteor=False)
    assert bad["BLEU-4"] < 0.1 < good["BLEU-4"]
    assert bad["BLEU-1"] < good["BLEU-1"]
    assert bad["CIDEr"] < good["CIDEr"]
    assert bad["ROUGE-L"] < good["ROUGE-L"]


def test_caption_scores_empty_or_mismatched_input_raises():
    with pytest.raises(ValueError):
        caption_scores([], [], meteor=False)
    with pytest.raises(ValueError):
        caption_scores(["a person"], [["a person"], ["someone"]], meteor=False)


# --- latency -----------------------------------------------------------------------------------


def test_latency_counts_warmup_and_timed_calls_and_orders_percentiles():
    calls = []

    def predict_one(i):
        calls.append(i)
        time.sleep(0.002 if i % 2 else 0.0005)

    out = latency_ms(predict_one, count=6, warmup=3)
    assert set(out) == {"latency_p50_ms", "latency_p90_ms"}
    assert calls == [0, 1, 2] + list(range(6))
    assert 0 < out["latency_p50_ms"] <= out["latency_p90_ms"]
    assert out["latency_p90_ms"] >= 2.0  # the slow calls are measured in milliseconds


def test_latency_keys_carry_the_given_name():
    out = latency_ms(lambda i: None, count=3, warmup=0, name="answer_latency")
    assert set(out) == {"answer_latency_p50_ms", "answer_latency_p90_ms"}


def test_latency_warmup_is_capped_by_count():
    calls = []
    latency_ms(calls.append, count=2, warmup=5)
    assert calls == [0, 1, 0, 1]


def test_interleaved_latency_warms_every_sample_then_alternates_the_methods_order():
    calls = []

    def method(name, seconds):
        def call(i):
            calls.append((name, i))
            time.sleep(seconds)
        return call

    out = interleaved_latency({"a": method("a", 0.0005), "b": method("b", 0.003)}, count=2,
                              rounds=3)
    warm = [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    a, b = [("a", 0), ("a", 1)], [("b", 0), ("b", 1)]
    assert calls == warm + a + b + b + a + a + b
    assert set(out) == {"a", "b"}
    assert set(out["a"]) == {"latency_p50_ms", "latency_p90_ms"}
    assert (out["a"]["latency_p50_ms"] < 3.0 <= out["b"]["latency_p50_ms"]
            <= out["b"]["latency_p90_ms"])
