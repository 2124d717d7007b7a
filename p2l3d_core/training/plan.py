"""The run plan, defined once: which models a preset trains, the folder each lives in and the
config each trains with. ``jobs/distill.py`` trains the plan; the evaluation finds the trained
models through the same layout (:func:`find_models`).

Layout of a run folder::

    teacher/  student/  seeds/student-s1/ ...          the method and its extra seeds
    baselines/baseline_2d/  seeds/baseline_2d-s1/ ...  the same architecture, no teacher
    baselines/baseline_2d_no3d/  baselines/coords_2d/
    curve/f0.05/{teacher,student,baselines/baseline_2d}/   learning-curve points
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from p2l3d_core import storage
from p2l3d_core.models.config import PoseModelConfig
from p2l3d_core.training.config import TrainConfig
from p2l3d_core.training.presets import PipelinePreset

STAGES = ("render", "teacher", "student", "baselines", "curve", "evaluate")
TRAINING_STAGES = ("teacher", "student", "baselines", "curve")
METHOD_FOLDERS = {
    "student": "student",
    "teacher": "teacher",
    "baseline_2d": "baselines/baseline_2d",
    "baseline_2d_no3d": "baselines/baseline_2d_no3d",
    "coords_2d": "baselines/coords_2d",
}
SEEDED = ("student", "baseline_2d")  # trained ``preset.seeds`` times
CURVE_METHODS = ("teacher", "student", "baseline_2d")  # trained at each curve fraction
# Settings only a distilled student uses; the labelled-only models keep TrainConfig's defaults.
DISTILL_FIELDS = ("match_weight", "rkd_weight", "answer_kd_weight", "pool_captions")


@dataclass(frozen=True)
class PlannedRun:
    """One training: its folder relative to the run (``name``), the runner stage that trains it
    (``teacher`` or ``student``), the method it is evaluated as, and its config."""

    name: str
    stage: str
    method: str
    config: TrainConfig


def curve_folder(fraction: float) -> str:
    return f"curve/f{fraction:g}"


def model_folder(method: str, seed: int = 0, fraction: float | None = None) -> str:
    """Where ``method``'s model with seed offset ``seed`` lives, relative to the run (at the
    curve point ``fraction``, if given)."""
    folder = METHOD_FOLDERS[method] if seed == 0 else f"seeds/{method}-s{seed}"
    return folder if fraction is None else f"{curve_folder(fraction)}/{folder}"


def is_trained(run: str, name: str) -> bool:
    """A model folder is finished once its ``config.json`` is written (the export's last file)."""
    return storage.exists(storage.join(run, *name.split("/"), "config.json"))


def plan_runs(p: PipelinePreset, stages: list[str], model: PoseModelConfig, output: str,
              seed: int) -> list[PlannedRun]:
    """Every training the chosen stages need, in order: a teacher before the students distilled
    from it."""
    # The preset's inputs, on ``model``'s sizes. Teacher and student read the pose's geometry
    # (preset ``geometry``); the labelled-only baselines do not: the student learns it from the
    # teacher's 3D, which they never see.
    model = dataclasses.replace(model, pose_input=p.pose_input, pose_input_3d=p.pose_input_3d,
                                geometry=p.geometry)
    base = dataclasses.replace(p.train, model=model)
    defaults = TrainConfig()
    labelled_only = dataclasses.replace(base, **{k: getattr(defaults, k) for k in DISTILL_FIELDS})
    student_model = dataclasses.replace(model, pose_input=p.student_input)
    baseline_model = dataclasses.replace(student_model, geometry=False)
    keypoints_only = dataclasses.replace(model, pose_input="keypoints", geometry=False)

    def teacher(fraction: float | None) -> PlannedRun:
        return PlannedRun(model_folder("teacher", 0, fraction), "teacher", "teacher",
                          dataclasses.replace(labelled_only, epochs=p.teacher_epochs, seed=seed,
                                              labelled_fraction=fraction or base.labelled_fraction))

    def student(method: str, s: int, fraction: float | None, **kw) -> PlannedRun:
        labelled = fraction or base.labelled_fraction
        if method == "student":
            teacher_dir = storage.join(output, *model_folder("teacher", 0, fraction).split("/"))
            cfg = dataclasses.replace(base, epochs=p.student_epochs, teacher_path=teacher_dir)
        else:
            cfg = dataclasses.replace(labelled_only, epochs=p.baseline_epochs)
        cfg = dataclasses.replace(cfg, **{
            "seed": seed + s, "model": student_model if method == "student" else baseline_model,
            "labelled_fraction": labelled, **kw})
        return PlannedRun(model_folder(method, s, fraction), "student", method, cfg)

    runs = []
    if "teacher" in stages:
        runs.append(teacher(None))
    if "student" in stages:
        runs += [student("student", s, None) for s in range(p.seeds)]
    if "baselines" in stages:
        if "baseline_2d" in p.baselines:
            runs += [student("baseline_2d", s, None) for s in range(p.seeds)]
        if "baseline_2d_no3d" in p.baselines:
            runs.append(student("baseline_2d_no3d", 0, None, language="2d"))
        # With a keypoint student, baseline_2d is the keypoint network already.
        if "coords_2d" in p.baselines and baseline_model != keypoints_only:
            runs.append(student("coords_2d", 0, None, model=keypoints_only))
    if "curve" in stages:
        for fraction in p.curve:
            runs += [teacher(fraction), student("student", 0, fraction),
                     student("baseline_2d", 0, fraction)]
    return runs


def find_models(run: str, fraction: float | None = None) -> dict[str, list[str]]:
    """Trained models of a run (or of its curve point ``fraction``) by method, seed 0 first;
    methods not trained are absent."""
    base = storage.join(run, *curve_folder(fraction).split("/")) if fraction is not None else run
    seeded = storage.list_folders(storage.join(base, "seeds"))
    out = {}
    for method, folder in METHOD_FOLDERS.items():
        names = [folder] + sorted(
            (f"seeds/{n}" for n in seeded
             if n.startswith(f"{method}-s") and n[len(method) + 2:].isdigit()),
            key=lambda n: int(n.rsplit("-s", 1)[1]))
        paths = [storage.join(base, *n.split("/")) for n in names if is_trained(base, n)]
        if paths:
            out[method] = paths
    return out


def curve_fractions(run: str) -> list[float]:
    """The labelled fractions whose curve folders the run holds."""
    out = []
    for name in storage.list_folders(storage.join(run, "curve")):
        try:
            out.append(float(name.removeprefix("f")))
        except ValueError:  # not a curve point
            continue
    return sorted(out)
