"""``evaluate_run``: what a run folder holds decides the methods; bad inputs fail early."""

import dataclasses

import pytest
import torch

from p2l3d_core.config import DatasetConfig, EvalSettings, SplitFractions
from p2l3d_core.dataset.pipeline import render_dataset
from p2l3d_core.evaluation.report import write_report
from p2l3d_core.evaluation.run import ModelLoader, evaluate_run, evaluation_inputs, finished_report
from p2l3d_core.models import Student, load_pretrained, save_pretrained
from p2l3d_core.models.config import TextConfig, preset


@pytest.mark.slow
def test_a_missing_extra_set_fails_before_the_lifter_trains(ray_local, tmp_path):
    """The lifter takes minutes on a real dataset: a mistyped ``--set`` must not wait for it."""
    data = str(tmp_path / "ds")
    render_dataset(data, DatasetConfig(num_poses=40, image_size=32, shard_size=40),
                   log=lambda m: None)
    (tmp_path / "run" / "student").mkdir(parents=True)
    (tmp_path / "run" / "student" / "config.json").write_text("{}")
    logged: list[str] = []
    with pytest.raises(FileNotFoundError, match=f"no manifest.json under {tmp_path / 'nope'}"):
        evaluate_run(str(tmp_path / "run"), data, extra_sets={"h36m": str(tmp_path / "nope")},
                     log=logged.append)
    assert not any("lifter" in line for line in logged), logged
    # A dataset without test poses is named too (it failed in torch.cat after the lifter).
    empty = str(tmp_path / "no-test")
    render_dataset(empty, DatasetConfig(num_poses=20, image_size=32, shard_size=20,
                                        splits=SplitFractions(0.9, 0.1, 0.0)), log=lambda m: None)
    with pytest.raises(ValueError, match=f"the test set has no poses \\({empty}\\)"):
        evaluate_run(str(tmp_path / "run"), empty, log=logged.append)
    assert not any("lifter" in line for line in logged), logged


def test_the_loader_gives_models_with_one_frozen_text_backbone_one_sentence_cache(tmp_path):
    cfg = preset("tiny", 32)
    for name, model in (("a", Student(cfg)), ("b", Student(cfg)),
                        ("trains",
                         Student(dataclasses.replace(cfg, text=TextConfig(freeze=False))))):
        save_pretrained(model, tmp_path / name)
    loader = ModelLoader()
    a, b, trains = (loader.method(n, str(tmp_path / n)).model for n in ("a", "b", "trains"))
    assert a.text.sentence_cache is b.text.sentence_cache
    with torch.no_grad():  # (features: before each model's own projection)
        want = a.text.features(["The person is kneeling."])
        b.text._features = None  # b must not run its backbone on a sentence a embedded
        torch.testing.assert_close(b.text.features(["The person is kneeling."]), want)
    assert (trains.text.sentence_cache is not a.text.sentence_cache
            and not trains.text.sentence_cache)


@pytest.mark.slow
def test_each_model_is_loaded_once_for_every_set_and_the_latency_phase(ray_local, tmp_path,
                                                                       monkeypatch):
    """From an s3:// run a load is a download of the whole model: the evaluation scores a
    loaded model on every set and times its seed 0 without loading it again."""
    from p2l3d_core.evaluation import run as run_module

    data = str(tmp_path / "ds")
    render_dataset(data, DatasetConfig(num_poses=40, image_size=32, shard_size=40),
                   log=lambda m: None)
    folders = ("student", "seeds/student-s1", "baselines/baseline_2d")
    for folder in folders:
        save_pretrained(Student(preset("tiny", 32)), tmp_path / "run" / folder)
    loaded: list[str] = []

    def load_and_count(path, *args, **kwargs):
        loaded.append(str(path))
        return load_pretrained(path, *args, **kwargs)

    monkeypatch.setattr(run_module, "load_pretrained", load_and_count)
    settings = EvalSettings(eval_poses=6, latency_samples=2, latency_rounds=1, meteor=False,
                            lifter_epochs=1)
    report = evaluate_run(str(tmp_path / "run"), data, settings, extra_sets={"again": data},
                          log=lambda m: None)
    assert sorted(loaded) == sorted(str(tmp_path / "run" / f) for f in folders)
    for set_name in ("test", "again"):
        methods = report["sets"][set_name]["methods"]
        assert methods["student"]["runs"] == 2 and methods["baseline_2d"]["runs"] == 1
        assert {"lifter", "rules_3d"} <= set(methods)
    for name in ("student", "baseline_2d", "lifter"):
        assert report["methods"][name]["latency_p50_ms"] > 0
        assert report["methods"][name]["answer_latency_p50_ms"] > 0
    # Written and read back, the report is recognised as finished for exactly these inputs.
    write_report(str(tmp_path / "run" / "report"), report)
    inputs = evaluation_inputs(str(tmp_path / "run"), data, settings, {"again": data})
    assert finished_report(str(tmp_path / "run"), inputs) is not None


def test_a_report_is_reused_only_for_the_same_models_sets_and_settings(tmp_path):
    """``jobs/distill.py`` run again keeps a finished evaluation, unless anything it was
    computed from changed: a model exported again, another set, other settings or seed."""
    from p2l3d_core import storage

    run = str(tmp_path)
    for folder in ("student", "baselines/baseline_2d", "curve/f0.05/teacher"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "config.json").write_text('{"epoch": 3}')
    inputs = evaluation_inputs(run, "ds", EvalSettings(eval_poses=10), {"cmu": "c"}, seed=0)
    assert set(inputs["models"]) == {str(tmp_path / f) for f in (
        "student", "baselines/baseline_2d", "curve/f0.05/teacher")}
    assert finished_report(run, inputs) is None  # nothing evaluated yet
    storage.write_json(str(tmp_path / "report" / "report.json"), {"inputs": inputs, "methods": {}})
    assert finished_report(run, inputs)["inputs"] == inputs
    for changed in (evaluation_inputs(run, "ds", EvalSettings(eval_poses=11), {"cmu": "c"}),
                    evaluation_inputs(run, "ds", EvalSettings(eval_poses=10), {}),
                    evaluation_inputs(run, "ds", EvalSettings(eval_poses=10), {"cmu": "c"}, 1)):
        assert finished_report(run, changed) is None
    (tmp_path / "student" / "config.json").write_text('{"epoch": 4}')  # trained again
    assert finished_report(run, evaluation_inputs(run, "ds", EvalSettings(eval_poses=10),
                                                  {"cmu": "c"})) is None
