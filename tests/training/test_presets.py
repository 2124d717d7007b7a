"""Pipeline presets are files, read by one mechanism: every field is checked by the dataclass
that owns it, overrides (flags) are checked the same way, before anything renders or trains."""

import argparse

import pytest

from p2l3d_core.config import DatasetConfig, EvalSettings
from p2l3d_core.models.config import preset as model_preset
from p2l3d_core.training.config import TrainConfig
from p2l3d_core.training.plan import STAGES, plan_runs
from p2l3d_core.training.presets import (
    PRESET_DIR,
    add_preset_arguments,
    load_preset,
    preset_from_args,
    preset_names,
)


def test_the_shipped_presets_are_files_and_all_load():
    assert preset_names() == ["paper", "quickstart", "smoke", "study"]
    for name in preset_names():
        p = load_preset(name)
        assert (PRESET_DIR / f"{name}.yaml").is_file() and p.name == name and p.description
        assert isinstance(p.dataset, DatasetConfig) and isinstance(p.train, TrainConfig)
        assert isinstance(p.evaluate, EvalSettings)


def test_study_is_the_full_comparison_and_quickstart_a_small_part_of_it():
    study, quick = load_preset("study"), load_preset("quickstart")
    # The scale every README result before 2026-12-06 was measured at (then named quickstart).
    assert (study.dataset.num_poses, study.dataset.image_size, study.teacher_epochs,
            study.student_epochs, study.baseline_epochs, study.seeds, study.curve) == (
        23_000, 64, 24, 12, 24, 3, (0.05, 0.25))
    assert (study.train.lr, study.train.batch_size, study.train.labelled_fraction,
            study.train.pool_captions) == (1e-3, 64, 0.111, 16)
    model = model_preset("small", 64)
    assert len(plan_runs(study, list(STAGES), model, "/r", 0)) == 15
    assert [r.name for r in plan_runs(quick, list(STAGES), model, "/r", 0)] == [
        "teacher", "student", "baselines/baseline_2d"]
    assert quick.dataset.num_poses < study.dataset.num_poses
    # Settings nobody wrote in a file come from the one dataclass that owns them.
    assert load_preset("quickstart").train.weight_decay == TrainConfig().weight_decay
    assert load_preset("smoke").evaluate.latency_rounds == EvalSettings().latency_rounds


@pytest.mark.parametrize("override, message", [
    ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
    ({"num_workers": 0}, "num_workers must be >= 1, got 0"),
    ({"seeds": 0}, "seeds must be >= 1, got 0"),
    ({"eval_poses": 0}, "eval_poses must be >= 1, got 0"),
    ({"labelled_fraction": 1.5}, r"labelled_fraction must be in \(0, 1\], got 1.5"),
    ({"labelled_fraction": 0.0}, r"labelled_fraction must be in \(0, 1\], got 0.0"),
    ({"curve": (0.05, 2.0)}, r"each learning-curve fraction must be in \(0, 1\], got 2.0"),
    ({"lr": -1e-3}, "lr must be > 0, got -0.001"),
    ({"student_pose_input": "depth"}, "student_pose_input must be one of"),
    ({"zero_stage": 3}, "zero_stage 3 is not supported"),
    ({"model": "huge"}, "model must be one of tiny, small, base, got 'huge'"),
    ({"num_poses": 0}, "num_poses must be >= 1, got 0"),
    ({"baselines": ("baseline_3d",)}, "each of baselines must be one of"),
    ({"answer_kd_weight": -1.0}, "answer_kd_weight must be >= 0"),
    ({"pool_captions": -1}, "pool_captions must be >= 0"),
    ({"lr_schedule": "linear"}, "lr_schedule must be one of"),
    ({"colour": "red"}, "unknown preset field 'colour'"),
])
def test_an_override_that_cannot_run_is_refused_by_name(override, message):
    with pytest.raises(ValueError, match=message):
        load_preset("quickstart", **override)


def test_an_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="unknown preset 'huge': choose from paper, quickstart, "
                                         "smoke, study, or give a .yaml file"):
        load_preset("huge")
    with pytest.raises(ValueError, match="preset file nope.yaml does not exist"):
        load_preset("nope.yaml")


def test_numbers_as_yaml_writes_them_are_read_as_numbers(tmp_path):
    """YAML reads ``1e-3`` as text and ``[0.1, 1]`` as a float and an int."""
    path = tmp_path / "mine.yaml"
    path.write_text("teacher_epochs: 1\nstudent_epochs: 1\nbaseline_epochs: 1\ncurve: [0.1, 1]\n"
                    "train: {lr: 1e-3}\nevaluate: {eval_poses: null}\n")
    p = load_preset(str(path))
    assert (p.train.lr, p.curve, p.evaluate.eval_poses) == (1e-3, (0.1, 1.0), None)


def test_a_users_own_file_is_read_like_a_shipped_one(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("teacher_epochs: 2\nstudent_epochs: 1\nbaseline_epochs: 3\nmodel: tiny\n"
                    "baselines: [coords_2d]\ndataset: {num_poses: 50, image_size: 32}\n"
                    "train: {lr: 0.01, weight_decay: 0.0}\n")
    p = load_preset(str(path), seeds=2)
    assert (p.name, p.teacher_epochs, p.seeds, p.baselines) == ("mine", 2, 2, ("coords_2d",))
    assert (p.dataset.num_poses, p.train.lr, p.train.weight_decay) == (50, 0.01, 0.0)
    assert p.evaluate == EvalSettings()


@pytest.mark.parametrize("text, message", [
    ("teacher_epochs: 1\nstudent_epochs: 1\nbaseline_epochs: 1\nepochs: 3\n",
     r"unknown field\(s\) epochs"),
    ("teacher_epochs: 1\nstudent_epochs: 1\nbaseline_epochs: 1\ntrain: {epochs: 3}\n",
     "train.epochs is set by the run plan"),
    ("teacher_epochs: 1\nstudent_epochs: 1\nbaseline_epochs: 1\ntrain: {lrate: 3}\n",
     "unknown field train.lrate"),
    ("teacher_epochs: 1\nstudent_epochs: 1\nbaseline_epochs: 1\ndataset: {seed: 3}\n",
     "dataset.seed is set by --seed"),
    ("teacher_epochs: 1\nstudent_epochs: 1\nbaseline_epochs: 1\ntrain: [1, 2]\n",
     "train must be a mapping"),
    ("teacher_epochs: 1\nstudent_epochs: 1\n", "baseline_epochs"),
    ("- 1\n- 2\n", "expected a mapping of fields"),
    # Values of the wrong kind are named too (they failed later, inside Ray, or not at all).
    ("teacher_epochs: 2.5\nstudent_epochs: 1\nbaseline_epochs: 1\n",
     "teacher_epochs must be a whole number, got 2.5"),
    ("teacher_epochs: 1\nstudent_epochs: 1\nbaseline_epochs: 1\ncurve: 0.5\n",
     "curve must be a list, got 0.5"),
    ("teacher_epochs: 1\nstudent_epochs: 1\nbaseline_epochs: 1\ndataset: {num_poses: 8000.0}\n",
     "dataset.num_poses must be a whole number, got 8000.0"),
    ("teacher_epochs: 1\nstudent_epochs: 1\nbaseline_epochs: 1\ntrain: {lr: fast}\n",
     "train.lr must be a number, got 'fast'"),
])
def test_a_bad_preset_file_is_refused_naming_the_file_and_the_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_preset(str(path))
    assert str(path) in str(err.value)


def test_flags_override_single_fields_and_default_to_the_presets_value():
    parser = argparse.ArgumentParser()
    add_preset_arguments(parser)
    p = preset_from_args(parser.parse_args([]))
    assert p == load_preset("quickstart")
    args = parser.parse_args(["--preset", "study", "--num-poses", "500", "--lr", "0.01",
                              "--use-gpu", "--eval-poses", "7", "--student-pose-input",
                              "keypoints"])
    p = preset_from_args(args)
    assert (p.name, p.dataset.num_poses, p.train.lr, p.train.use_gpu, p.evaluate.eval_poses,
            p.student_input) == ("study", 500, 0.01, True, 7, "keypoints")
    assert preset_from_args(
        parser.parse_args(["--preset", "paper", "--no-use-gpu"])).train.use_gpu is False


def test_a_job_can_offer_some_flags_under_its_own_names():
    parser = argparse.ArgumentParser()
    add_preset_arguments(parser, ["teacher_epochs", "lr"], rename={"teacher_epochs": "epochs"})
    p = preset_from_args(parser.parse_args(["--epochs", "3"]))
    assert p.teacher_epochs == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["--num-poses", "3"])
