"""The run plan: which models a preset trains, where each lives, with which config. The
training job trains it and the evaluation finds models through the same layout."""

import pytest

from p2l3d_core.models.config import preset as model_preset
from p2l3d_core.training.plan import (
    METHOD_FOLDERS,
    curve_fractions,
    find_models,
    is_trained,
    model_folder,
    plan_runs,
)
from p2l3d_core.training.presets import load_preset

ALL = ["teacher", "student", "baselines", "curve"]


def _names(runs):
    return [r.name for r in runs]


def test_the_study_plan_trains_fifteen_models_teachers_first():
    runs = plan_runs(load_preset("study"), ALL, model_preset("tiny", 32), "/runs/x", seed=0)
    assert _names(runs) == [
        "teacher", "student", "seeds/student-s1", "seeds/student-s2", "baselines/baseline_2d",
        "seeds/baseline_2d-s1", "seeds/baseline_2d-s2", "baselines/baseline_2d_no3d",
        "baselines/coords_2d", "curve/f0.05/teacher", "curve/f0.05/student",
        "curve/f0.05/baselines/baseline_2d", "curve/f0.25/teacher", "curve/f0.25/student",
        "curve/f0.25/baselines/baseline_2d"]
    for r in runs:
        assert r.name == model_folder(r.method, r.config.seed, r.name.startswith("curve/")
                                      and r.config.labelled_fraction or None)
    assert {r.config.teacher_path for r in runs if r.method == "student"} == {
        "/runs/x/teacher", "/runs/x/curve/f0.05/teacher", "/runs/x/curve/f0.25/teacher"}


def test_the_preset_chooses_the_baselines():
    quick = plan_runs(load_preset("quickstart"), ALL, model_preset("tiny", 32), "/r", 0)
    assert [(r.name, r.method) for r in quick] == [
        ("teacher", "teacher"), ("student", "student"), ("baselines/baseline_2d", "baseline_2d")]
    only = plan_runs(load_preset("quickstart", baselines=("coords_2d",)), ["baselines"],
                     model_preset("tiny", 32), "/r", 0)
    assert [(r.name, r.config.model.pose_input) for r in only] == [
        ("baselines/coords_2d", "keypoints")]


def test_labelled_only_models_train_their_own_epochs():
    """Baselines see ~1/labelled_fraction fewer rows an epoch than the distilled student, so
    they train ``baseline_epochs``; distilled students and teachers keep theirs."""
    p = load_preset("study", teacher_epochs=3, student_epochs=5, baseline_epochs=17, seeds=2)
    epochs = {r.name: r.config.epochs for r in plan_runs(p, ALL, model_preset("tiny", 32),
                                                         "/runs/x", seed=0)}
    assert epochs["teacher"] == epochs["curve/f0.05/teacher"] == 3
    assert epochs["student"] == epochs["seeds/student-s1"] == epochs["curve/f0.25/student"] == 5
    for name in ("baselines/baseline_2d", "seeds/baseline_2d-s1", "baselines/baseline_2d_no3d",
                 "baselines/coords_2d", "curve/f0.25/baselines/baseline_2d"):
        assert epochs[name] == 17, name


def test_a_keypoint_student_of_an_image_teacher():
    """``student_pose_input: keypoints``: the teacher keeps the preset's inputs, the student
    and its own-architecture baselines read keypoints, and coords_2d (the same network as
    baseline_2d then) is not trained a second time."""
    p = load_preset("study", student_pose_input="keypoints", seeds=2)
    model = model_preset("tiny", 32, p.pose_input, p.pose_input_3d)
    inputs = {r.name: r.config.model.pose_input for r in plan_runs(p, ALL, model, "/runs/x", 0)}
    assert inputs.pop("teacher") == inputs.pop("curve/f0.05/teacher") == "image+keypoints"
    inputs.pop("curve/f0.25/teacher")
    assert "baselines/coords_2d" not in inputs
    assert set(inputs.values()) == {"keypoints"}, inputs
    default = {r.name: r.config.model.pose_input for r in
               plan_runs(load_preset("study"), ["student", "baselines"], model, "/runs/x", 0)}
    assert default.pop("baselines/coords_2d") == "keypoints"
    assert set(default.values()) == {"image+keypoints"}


def test_distillation_settings_reach_the_distilled_students_only():
    """The teacher-matching weights and pool captions are a distilled student's; the teacher
    and the baselines have no teacher, so they keep TrainConfig's defaults."""
    p = load_preset("study", seeds=2, answer_kd_weight=4.0, match_weight=0.5, rkd_weight=0.0,
                    pool_captions=8)
    runs = plan_runs(p, ALL, model_preset("tiny", 32), "/runs/x", seed=0)
    for r in runs:
        c = r.config
        expected = (4.0, 0.5, 0.0, 8) if r.method == "student" else (1.0, 1.0, 1.0, 0)
        assert (c.answer_kd_weight, c.match_weight, c.rkd_weight, c.pool_captions) == expected
        assert bool(c.teacher_path) == (r.method == "student"), r.name
    assert {r.config.language for r in runs if r.method == "baseline_2d_no3d"} == {"2d"}


def test_shared_training_settings_reach_every_training():
    p = load_preset("study", lr_schedule="cosine", zero_stage=1, batch_size=8)
    runs = plan_runs(p, ALL, model_preset("tiny", 32), "/runs/x", seed=3)
    assert {(r.config.lr_schedule, r.config.zero_stage, r.config.batch_size) for r in runs} == {
        ("cosine", 1, 8)}
    assert {r.config.seed for r in runs} == {3, 4, 5}


@pytest.mark.parametrize("fraction", [None, 0.05])
def test_find_models_reads_the_layout_the_plan_writes(tmp_path, fraction):
    """Seed 0 first, then the seeds in number order; a folder without its config.json (an
    export cut short) is not a model; unrelated folders are ignored."""
    run = str(tmp_path)
    names = [model_folder(m, s, fraction) for m, s in (
        ("student", 0), ("student", 2), ("student", 10), ("student", 1), ("baseline_2d", 0),
        ("teacher", 0), ("coords_2d", 0))]
    for name in names:
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / model_folder("baseline_2d_no3d", 0, fraction)).mkdir(parents=True)
    if fraction is None:
        (tmp_path / "seeds" / "student-sx").mkdir()
    found = find_models(run, fraction)
    base = tmp_path / "curve" / "f0.05" if fraction else tmp_path
    assert found["student"] == [str(base / "student")] + [
        str(base / "seeds" / f"student-s{s}") for s in (1, 2, 10)]
    assert set(found) == {"student", "baseline_2d", "teacher", "coords_2d"}
    assert not is_trained(run, model_folder("baseline_2d_no3d", 0, fraction))
    assert curve_fractions(run) == ([0.05] if fraction else [])
    # Every method folder the plan names is one find_models looks in.
    assert {model_folder(m) for m in found} <= set(METHOD_FOLDERS.values())
