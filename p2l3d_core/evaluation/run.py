"""Evaluate a finished training run: every method it holds, on its test split and on any
further rendered sets (real 3D data), into one report. The run's layout is the run plan's
(``p2l3d_core/training/plan.py``), read here through ``find_models``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import numpy as np

from p2l3d_core import storage
from p2l3d_core.config import EvalSettings
from p2l3d_core.dataset.build import labelled_mask
from p2l3d_core.dataset.schema import Column
from p2l3d_core.dataset.shards import load_table
from p2l3d_core.evaluation.compare import aggregate, check_targets, compare_latency, score_method
from p2l3d_core.evaluation.lifter import train_lifter
from p2l3d_core.evaluation.methods import EvalSet, ModelMethod, RuleMethod, lifter_error_cm
from p2l3d_core.evaluation.report import write_report
from p2l3d_core.models import text_features
from p2l3d_core.models.io import load_pretrained
from p2l3d_core.poses.camera import Camera
from p2l3d_core.training.plan import METHOD_FOLDERS, curve_fractions, find_models

LOG = logging.getLogger(__name__)

EVAL_COLUMNS = [Column.SPLIT, Column.ACTION, Column.IMAGE_2D, Column.IMAGE_3D,
                Column.KEYPOINTS_2D, Column.VISIBLE_2D, Column.KEYPOINTS_3D, Column.CAMERA,
                Column.CAPTIONS, Column.QUESTIONS, Column.ANSWERS, Column.QUESTION_FAMILIES,
                Column.NEEDS_DEPTH]


class ModelLoader:
    """Loads the evaluated models so that those with the same frozen text backbone (every model
    of a run, unless one fine-tuned it) share one sentence cache: the test captions and
    questions are embedded once, not once per model and seed."""

    def __init__(self):
        self.caches: dict[str, dict] = {}

    def method(self, name: str, path: str) -> ModelMethod:
        model = load_pretrained(path)
        if model.text.frozen:
            model.text.sentence_cache = self.caches.setdefault(
                text_features.fingerprint(model.text), {})
        return ModelMethod(name, model)


def _score(loader: ModelLoader, name: str, paths: list[str], sets: dict[str, EvalSet], log,
           **kw) -> tuple[dict[str, dict[str, float]], ModelMethod]:
    """``name``'s metrics on each set (mean and spread over ``paths``, its seeds) and its
    seed-0 model. Each model is loaded once and scored on every set: from an ``s3://`` run a
    load is a download of the whole model (the frozen text encoder included)."""
    runs: dict[str, list[dict[str, float]]] = {set_name: [] for set_name in sets}
    first: ModelMethod | None = None
    for path in paths:
        method = loader.method(name, path)
        if first is None:
            first = method
        for set_name, data in sets.items():
            log(f"  {set_name}: {name} ({path})")
            runs[set_name].append(score_method(method, data, **kw))
    return {set_name: aggregate(scores) for set_name, scores in runs.items()}, first


def evaluate_run(run: str, dataset: str, settings: EvalSettings | None = None, *,
                 extra_sets: dict[str, str] | None = None, seed: int = 0,
                 log: Callable[[str], None] = LOG.info) -> dict:
    """The report of a run: per set, every method's metrics (mean and spread over seeds);
    latency of every method on the test split, timed together (seed 0 of each; 0 samples:
    none); targets checked on the test split; the learning curve when the run has one."""
    settings = settings or EvalSettings()
    eval_poses, latency_samples = settings.eval_poses, settings.latency_samples
    latency_rounds, lifter_epochs = settings.latency_rounds, settings.lifter_epochs
    kw = {"meteor": settings.meteor}
    models = find_models(run)
    if not models:
        raise FileNotFoundError(f"no trained models under {run} "
                                f"(expected {', '.join(METHOD_FOLDERS.values())})")
    # Every set is read before the lifter trains: a wrong --set fails in seconds, not minutes.
    sets = {"test": load_table(dataset, "test", EVAL_COLUMNS)}
    for name, uri in (extra_sets or {}).items():
        sets[name] = load_table(uri, None, EVAL_COLUMNS)
    for name, table in sets.items():
        if table.num_rows == 0:
            where = dataset if name == "test" else extra_sets[name]
            raise ValueError(f"the {name} set has no poses ({where}): nothing to evaluate on")
    train = load_table(dataset, "train",
                       [Column.POSE_ID, Column.KEYPOINTS_2D, Column.VISIBLE_2D,
                        Column.KEYPOINTS_3D, Column.CAMERA])
    log(f"lifter: training on {train.num_rows} poses ({lifter_epochs} epochs)")
    cams = np.stack([Camera.from_dict(c).position for c in train.column(Column.CAMERA).to_pylist()])
    lifter = train_lifter(np.array(train.column(Column.KEYPOINTS_2D).to_pylist(), dtype=np.float64),
                          np.array(train.column(Column.VISIBLE_2D).to_pylist(), dtype=bool),
                          np.array(train.column(Column.KEYPOINTS_3D).to_pylist(), dtype=np.float64),
                          cams, epochs=lifter_epochs, seed=seed, log=log)
    report: dict = {"run": run, "dataset": dataset, "sets": {},
                    "settings": {"eval_poses": eval_poses,
                                 "latency": "p50 of single-pose captions, "
                                 "batch 1, 1 CPU thread, keypoints in -> caption out; test split, "
                                 f"{latency_samples} poses x {latency_rounds} rounds, the methods "
                                 "interleaved (order reversed each round) after a warm-up pass",
                                 "answer_latency": "p50 of one question about one pose, batch 1, "
                                                   "1 CPU thread, keypoints and question text in "
                                                   "-> answer out (a known question's text "
                                                   "embedding cached, as in a service); "
                                                   "timed as latency is",
                                 "vqa": "closed vocabulary: a learned model's answer head picks "
                                        "among the family's answers; rule methods read their "
                                        "posecodes (the lifter's: nearest category)"}}
    evaluated = {name: EvalSet.from_table(name, table, eval_poses, seed)
                 for name, table in sets.items()}
    loader = ModelLoader()
    scored: dict[str, dict[str, dict[str, float]]] = {set_name: {} for set_name in evaluated}
    timed: dict = {}  # seed 0 of each method, kept for the latency phase
    for name, paths in models.items():
        by_set, first = _score(loader, name, paths, evaluated, log, **kw)
        for set_name, metrics in by_set.items():
            scored[set_name][name] = metrics
        if latency_samples > 0:
            timed[name] = first
    rules = {"lifter": RuleMethod("lifter", lifter), "rules_3d": RuleMethod("rules_3d")}
    for set_name, data in evaluated.items():
        methods = scored[set_name]
        for name, method in rules.items():
            log(f"  {set_name}: {name}")
            methods[name] = score_method(method, data, **kw)
        methods["lifter"]["lift_error_cm"] = lifter_error_cm(lifter, data)
        report["sets"][set_name] = {"poses": len(data), "questions": len(data.qa_row),
                                    "methods": methods}
    report["methods"] = report["sets"]["test"]["methods"]
    if latency_samples > 0:
        log(f"latency: {len(models) + 2} methods interleaved, {latency_samples} samples x "
            f"{latency_rounds} rounds")
        for name, latency in compare_latency({**timed, **rules}, evaluated["test"], latency_samples,
                                             latency_rounds).items():
            report["methods"][name].update(latency)
    report["targets"] = check_targets(report["methods"])
    report["inputs"] = evaluation_inputs(run, dataset, settings, extra_sets, seed)
    curve = _learning_curve(loader, run, evaluated["test"], log, kw)
    main_fraction = storage.read_json(storage.join(models["student"][0], "config.json")).get(
        "train", {}).get("labelled_fraction") if "student" in models else None
    if main_fraction is not None:
        curve.append({"labelled_fraction": main_fraction, **{
            m: report["methods"][m]["vqa_depth_accuracy"] for m in ("student", "baseline_2d")
            if m in report["methods"]}})
    pose_ids = train.column(Column.POSE_ID).to_pylist()
    for point in curve:
        point["labelled_poses"] = int(labelled_mask(pose_ids, point["labelled_fraction"]).sum())
    report["learning_curve"] = (sorted(curve, key=lambda p: p["labelled_fraction"])
                                if len(curve) > 1 else [])
    return report


def evaluate_to_folder(run: str, dataset: str, settings: EvalSettings | None = None, *,
                       extra_sets: dict[str, str] | None = None, seed: int = 0,
                       log: Callable[[str], None] = LOG.info) -> tuple[dict, list[str]]:
    """Evaluate ``run`` and write its report under ``RUN/report/``: the one evaluation both
    ``jobs/evaluate.py`` and ``jobs/distill.py`` run. Returns the report and the paths written."""
    report = evaluate_run(run, dataset, settings, extra_sets=extra_sets, seed=seed, log=log)
    return report, write_report(storage.join(run, "report"), report)


def evaluation_inputs(run: str, dataset: str, settings: EvalSettings | None = None,
                      extra_sets: dict[str, str] | None = None, seed: int = 0) -> dict:
    """What a report depends on: the sets (and when each was rendered), the settings, the seed,
    the code's version, and every model the run holds, each by a hash of its ``config.json``
    (rewritten by every export) and its weights' size. A report whose inputs equal these need
    not be computed again."""
    from p2l3d_core.dataset.shards import read_manifest
    from p2l3d_core.version import code_version

    models = {}
    for fraction in [None, *curve_fractions(run)]:
        for paths in find_models(run, fraction).values():
            for path in paths:
                blob = storage.read_bytes(storage.join(path, "config.json"))
                fs, weights = storage.resolve(storage.join(path, "model.safetensors"))
                size = fs.get_file_info(weights).size
                models[path] = f"{hashlib.sha256(blob).hexdigest()[:16]}-{size}"
    sets = {"test": dataset, **(extra_sets or {})}
    rendered = {}
    for name, uri in sets.items():  # a set rendered again at the same place counts as new
        try:
            manifest = read_manifest(uri)
            rendered[name] = f"{manifest.get('fingerprint')}@{manifest.get('created')}"
        except (FileNotFoundError, ValueError):
            rendered[name] = None
    return {"dataset": dataset, "sets": dict(sorted((extra_sets or {}).items())),
            "rendered": rendered, "settings": (settings or EvalSettings()).to_dict(),
            "seed": seed, "models": models, "code": code_version()}


def finished_report(run: str, inputs: dict) -> dict | None:
    """The run's ``report/report.json`` if it was computed from exactly ``inputs``, else None."""
    uri = storage.join(run, "report", "report.json")
    if not storage.exists(uri):
        return None
    report = storage.read_json(uri)
    return report if report.get("inputs") == inputs else None


def _learning_curve(loader: ModelLoader, run: str, data: EvalSet, log, kw) -> list[dict]:
    """needs_depth accuracy of student and baseline_2d on ``data`` (the test poses) at each
    labelled fraction trained under ``curve/``; the caller adds the main run's own point."""
    points = []
    for fraction in curve_fractions(run):
        models = find_models(run, fraction)
        if not models:
            continue
        point: dict = {"labelled_fraction": fraction}
        for method in ("student", "baseline_2d"):
            if method in models:
                scores, _ = _score(loader, method, models[method][:1], {data.name: data}, log, **kw)
                point[method] = scores[data.name]["vqa_depth_accuracy"]
        points.append(point)
    return points
