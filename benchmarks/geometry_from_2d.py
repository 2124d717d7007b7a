"""How well can the bends, the feet's ground contact and distance, the way the body faces and the
front/back offsets be read from 2D keypoints? (issue 27)

    .venv/bin/python benchmarks/geometry_from_2d.py --run runs/quickstart [--data DATASET]
        [--views 8] [--noise 0.02] [--epochs 25] [--tag NAME]

joint_bend asks a limb's 3D angle in four categories with 10-degree dead bands between them
(straight from 155 degrees, slightly bent 125-145, bent 70-115, fully bent under 60);
ground_contact asks which feet are down (an ankle under 15 cm is on the ground, over 22 cm off
it); feet_distance how far apart the ankles are (together under 0.6 hip widths, apart 0.8-1.8,
far apart over 2.2); facing, the camera's horizontal direction from the body's forward axis
(facing it within 40 degrees, away within 40, either side turned to it within 40 of
perpendicular); the depth families ask the sign of a front/back offset along the body's
forward axis (each hand ahead of the chest by 12 cm or behind it, the left foot or hand ahead
of the right by 10 cm). A 2D model must guess them all from a projection. The tables put what
the run's models answer
beside readings of the same 2D keypoints, on the test split and on every real set the run
evaluated (``RUN/real/*``):

- ``2d_angle_rule``: the rules applied to the bend as the image shows it (no learning; bends
  only);
- ``regressor_fit_here``: the geometry regressor fitted here the way the run's prefit fits it
  (``training/geometry_fit.py``: every training pose of ``--data``, default ``RUN/dataset``,
  each also filmed by ``--views`` more cameras, the heights and the camera's direction from
  keypoints with ``--noise``,
  ``--epochs`` epochs).
  ``--views 0`` fits on the rendered views alone, ``--noise 0`` on exact projections;
  ``--data`` another rendering (a changed generator) measures the new training data against
  the same real sets before a run is trained on it;
- ``<method>_regressor``: the geometry regressor inside each model folder that has one
  (``models/geometry.py``): the numbers its answer head reads;
- ``<method>_answers``: each model's answers to the family's questions (its answer head).

A regressed value is read by the nearest category (a dead band split at its middle). Accuracy
is over what the rules ask (limbs and feet outside the dead bands); bend MAE is over every limb
in degrees; the ankle's bias and MAE over every ankle in cm (a positive bias reads it high);
the facing direction's MAE over every pose the rules ask in degrees; an offset's MAE over every
pose in cm.
Prints the tables and writes ``benchmarks/results/geometry_from_2d[-TAG].json``. A few minutes
on 2 cores (the fit and one evaluation pass per model).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import parser, write_results

from p2l3d_core import storage
from p2l3d_core.dataset.schema import Column
from p2l3d_core.dataset.shards import load_table
from p2l3d_core.evaluation.methods import EvalSet, ModelMethod
from p2l3d_core.evaluation.run import EVAL_COLUMNS
from p2l3d_core.language.posecodes import (
    ANKLE_OFF_GROUND,
    ANKLE_ON_GROUND,
    BEND_INTERVALS_DEG,
    FEET_DISTANCE_INTERVALS,
    FORWARD_DEAD_BAND,
    HAND_DEPTH_DEAD_BAND,
    _categorise,
    facing_category,
)
from p2l3d_core.models.geometry import GEOMETRY_COLUMNS
from p2l3d_core.models.inputs import stack_column
from p2l3d_core.models.io import load_pretrained
from p2l3d_core.models.keypoints import (
    DEPTH_OFFSETS,
    FACING_COLUMNS,
    GEOMETRY_FEATURES,
    LIMBS,
    keypoint_features,
)
from p2l3d_core.training.geometry_fit import (
    COLUMNS,
    EXTRA_VIEWS,
    FIT_EPOCHS,
    KEYPOINT_NOISE,
    fit_pairs,
    fit_regressor,
    geometry_targets,
)
from p2l3d_core.training.plan import find_models

LIMB_NAMES = ("left elbow", "right elbow", "left knee", "right knee")
BENDS = slice(0, len(LIMBS))  # the geometry's columns (models/geometry.py): tens of degrees
ANKLES = [GEOMETRY_COLUMNS.index(c) for c in ("l_ankle_height", "r_ankle_height")]  # dm
FEET = GEOMETRY_COLUMNS.index("feet_distance")  # tenths of a hip width
FACING = [GEOMETRY_COLUMNS.index(c) for c in FACING_COLUMNS]  # the camera's direction, x 10
OFFSETS = slice(GEOMETRY_FEATURES - len(DEPTH_OFFSETS), GEOMETRY_FEATURES)  # decimetres
OFFSET_BANDS = np.array([HAND_DEPTH_DEAD_BAND, HAND_DEPTH_DEAD_BAND, FORWARD_DEAD_BAND,
                         FORWARD_DEAD_BAND]) * 10  # the rules' dead bands, decimetres
DEPTH = ("hand_front_back", "foot_forward", "hand_forward")
FAMILIES = ("joint_bend", "ground_contact", "feet_distance", "facing", *DEPTH)


def bend_category(angles: np.ndarray, nearest: bool = False) -> np.ndarray:
    """The rules' bend category of each angle (degrees), -1 in a dead band; ``nearest``: a
    dead band's value takes the closest category (split at its middle)."""
    return _categorise(angles, BEND_INTERVALS_DEG, nearest)


def contact(heights_m: np.ndarray, nearest: bool = False) -> np.ndarray:
    """The rules' ground contact of each ankle height (m): 0 on the ground, 1 off, -1 between
    (``nearest``: split at the dead band's middle)."""
    return _categorise(heights_m, (ANKLE_ON_GROUND, ANKLE_OFF_GROUND), nearest)


def features(data: EvalSet) -> np.ndarray:
    known = np.isfinite(data.keypoints_2d).all(-1) & data.visible
    return keypoint_features(data.keypoints_2d, known)


def true_geometry(data: EvalSet) -> np.ndarray:
    """The set's geometry from its true 3D, as the teacher reads it."""
    return geometry_targets(data.batch(np.arange(len(data)))).numpy()


def score_bends(truth: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Bends in degrees: accuracy of the nearest category where the rules ask, and MAE."""
    truth_category = bend_category(truth)
    asked = truth_category >= 0
    return {"accuracy": float((bend_category(estimate, nearest=True)[asked]
                               == truth_category[asked]).mean()),
            "mae_deg": float(np.abs(estimate - truth).mean())}


def score_ankles(truth: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Ankle heights in decimetres: each foot's contact read at the dead band's middle where
    the rules ask, and the height's bias and MAE in cm."""
    truth_contact = contact(truth / 10)
    asked = truth_contact >= 0
    read = contact(estimate / 10, nearest=True)
    return {"accuracy": float((read[asked] == truth_contact[asked]).mean()),
            "bias_cm": float((estimate - truth).mean() * 10),
            "mae_cm": float(np.abs(estimate - truth).mean() * 10)}


def score_feet(truth: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """The feet's distance in tenths of a hip width: its category (together, apart, far apart;
    a dead band split at its middle) where the rules ask, and the MAE in hip widths."""
    truth_category = _categorise(truth / 10, FEET_DISTANCE_INTERVALS)
    asked = truth_category >= 0
    read = _categorise(estimate / 10, FEET_DISTANCE_INTERVALS, True)
    return {"accuracy": float((read[asked] == truth_category[asked]).mean()),
            "mae_hip_widths": float(np.abs(estimate - truth).mean() / 10)}


def facing_angle(direction: np.ndarray) -> np.ndarray:
    """The camera's direction ``(N, 2)`` (ahead, left) -> the facing angle in degrees
    (``arctan2``'s range; ``posecodes.facing_category`` turns the circle), NaN for zeros (the
    rules do not ask)."""
    angle = np.degrees(np.arctan2(direction[:, 1], direction[:, 0]))
    return np.where(np.abs(direction).sum(1) > 0, angle, np.nan)


def score_facing(truth: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """The camera's direction (x 10): its facing category where the rules ask (a dead band
    split at its middle) and the angle's MAE in degrees."""
    true_angle, angle = facing_angle(truth), facing_angle(estimate)
    truth_category = facing_category(true_angle)
    asked = truth_category >= 0
    read = facing_category(angle, nearest=True)
    error = np.abs((angle - true_angle + 180.0) % 360.0 - 180.0)
    return {"accuracy": float((read[asked] == truth_category[asked]).mean()),
            "mae_deg": float(np.nanmean(error[asked]))}


def score_offsets(truth: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Front/back offsets in decimetres: the sign of each where the rules ask (outside the
    dead band), per offset and over all four, and the MAE in cm."""
    asked = np.abs(truth) > OFFSET_BANDS
    right = (estimate > 0) == (truth > 0)
    out = {name: float(right[asked[:, k], k].mean()) for k, name in enumerate(DEPTH_OFFSETS)}
    return {"accuracy": float(right[asked].mean()), **out,
            "mae_cm": float(np.abs(estimate - truth).mean() * 10)}


def answers_accuracy(method: ModelMethod, data: EvalSet) -> dict[str, float]:
    """The model's accuracy on each of :data:`FAMILIES`' questions (NaN where none is asked)."""
    got = method.predict(data).answers
    out = {}
    for family in FAMILIES:
        asked = [k for k, f in enumerate(data.qa_family) if f == family]
        out[family] = (float(np.mean([got[k] == data.qa_answer[k] for k in asked])) if asked
                       else float("nan"))
    return out


def fit_here(dataset: str, views: int, noise: float, epochs: int, seed: int
             ) -> torch.nn.Module:
    """The prefit's regressor, fitted on ``dataset``'s training split."""
    table = load_table(dataset, "train", COLUMNS)
    batch = {c: table.column(c).to_numpy(zero_copy_only=False) for c in COLUMNS}
    y = geometry_targets(batch)
    x, x_noisy, y, poses, seen = fit_pairs(
        stack_column(batch[Column.KEYPOINTS_2D]).astype(np.float64),
        stack_column(batch[Column.VISIBLE_2D]).astype(bool),
        stack_column(batch[Column.KEYPOINTS_3D]).astype(np.float64), y, views,
        np.random.default_rng(seed), noise)
    print(f"fitting the regressor on {poses} training poses x {seen} views (heights and "
          f"facing from keypoints with noise {noise:g}), {epochs} epochs")
    model, _ = fit_regressor(x, y, epochs, seed, lambda line: print(line, flush=True),
                             x_noisy if noise > 0 else None)
    return model


def print_table(title: str, results: dict, key: str, cell) -> None:
    columns = list(dict.fromkeys(c for row in results.values() for c in row[key]))
    print(f"\n{title}\n")
    print("| set | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, row in results.items():
        print(f"| {name} | " + " | ".join(
            "-" if c not in row[key] else cell(row[key][c]) for c in columns) + " |")


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--views", type=int, default=EXTRA_VIEWS,
                   help="more cameras per training pose in the fit here (0: the rendered only)")
    p.add_argument("--noise", type=float, default=KEYPOINT_NOISE,
                   help="Gaussian noise on the 2D keypoints the heights and the camera's "
                   "direction are fitted from, share of the pose's extent")
    p.add_argument("--epochs", type=int, default=FIT_EPOCHS, help="epochs of the fit here")
    p.add_argument("--poses", type=int, default=300, help="poses per set (as the evaluation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="")
    args = p.parse_args()
    started = time.perf_counter()
    dataset = args.data or storage.join(args.run, "dataset")
    net = fit_here(dataset, args.views, args.noise, args.epochs, args.seed)

    sets = {"test": EvalSet.from_table("test", load_table(dataset, "test", EVAL_COLUMNS),
                                       args.poses)}
    real = Path(args.run) / "real"
    for folder in sorted(real.iterdir()) if real.is_dir() else []:
        sets[folder.name] = EvalSet.from_table(folder.name,
                                               load_table(str(folder), None, EVAL_COLUMNS),
                                               args.poses)
    models = {m: load_pretrained(paths[0]) for m, paths in find_models(args.run).items()}
    results: dict[str, dict] = {}
    for name, data in sets.items():
        truth, x2 = true_geometry(data), torch.tensor(features(data))
        estimates = {"regressor_fit_here": net}
        estimates.update({f"{m}_regressor": model.geometry for m, model in models.items()
                          if getattr(model, "geometry", None) is not None})
        bends = {"2d_angle_rule": score_bends(truth[:, BENDS] * 10,
                                              np.degrees(np.arccos(np.clip(
                                                  x2[:, -len(LIMBS):].numpy(), -1, 1))))}
        ankles, feet, facing, offsets = {}, {}, {}, {}
        for label, regressor in estimates.items():
            with torch.no_grad():
                got = regressor(x2).numpy()
            bends[label] = score_bends(truth[:, BENDS] * 10, got[:, BENDS] * 10)
            ankles[label] = score_ankles(truth[:, ANKLES], got[:, ANKLES])
            feet[label] = score_feet(truth[:, FEET], got[:, FEET])
            facing[label] = score_facing(truth[:, FACING], got[:, FACING])
            offsets[label] = score_offsets(truth[:, OFFSETS], got[:, OFFSETS])
        for method, model in models.items():
            answered = answers_accuracy(ModelMethod(method, model), data)
            bends[f"{method}_answers"] = {"accuracy": answered["joint_bend"]}
            ankles[f"{method}_answers"] = {"accuracy": answered["ground_contact"]}
            feet[f"{method}_answers"] = {"accuracy": answered["feet_distance"]}
            facing[f"{method}_answers"] = {"accuracy": answered["facing"]}
            offsets[f"{method}_answers"] = {f: answered[f] for f in DEPTH}
        results[name] = {"joint_bend": bends, "ground_contact": ankles, "feet_distance": feet,
                         "facing": facing, "depth": offsets}
    print_table("joint_bend accuracy (bend MAE, degrees)", results, "joint_bend",
                lambda v: f"{v['accuracy']:.3f}"
                + (f" ({v['mae_deg']:.1f})" if "mae_deg" in v else ""))
    print_table("ground contact accuracy: each foot by the regressor, the family's questions by "
                "the answers (ankle height bias / MAE, cm)", results, "ground_contact",
                lambda v: f"{v['accuracy']:.3f}"
                + (f" ({v['bias_cm']:+.1f} / {v['mae_cm']:.1f})" if "bias_cm" in v else ""))
    print_table("feet distance: its category by the regressor, the family's questions by the "
                "answers (MAE, hip widths)", results, "feet_distance",
                lambda v: f"{v['accuracy']:.3f}"
                + (f" ({v['mae_hip_widths']:.2f})" if "mae_hip_widths" in v else ""))
    print_table("facing: its category by the regressor, the family's questions by the answers "
                "(direction MAE, degrees)", results, "facing",
                lambda v: f"{v['accuracy']:.3f}"
                + (f" ({v['mae_deg']:.1f})" if "mae_deg" in v else ""))
    print_table("front/back offsets: each offset's sign by the regressor, all four (offset MAE, "
                "cm); the depth families' questions by the answers", results, "depth",
                lambda v: " / ".join(f"{v[k]:.3f}" for k in
                                     (DEPTH_OFFSETS if "mae_cm" in v else DEPTH))
                + (f"; {v['accuracy']:.3f} ({v['mae_cm']:.1f})" if "mae_cm" in v else ""))
    print("(regressor cells: l_hand_depth / r_hand_depth / foot_forward / hand_forward; all; "
          "answer cells: hand_front_back / foot_forward / hand_forward)")
    write_results("geometry_from_2d" + (f"-{args.tag}" if args.tag else ""),
                  {"run": args.run, "data": dataset, "views": args.views,
                   "noise": args.noise, "epochs": args.epochs, "poses": args.poses,
                   "limbs": LIMB_NAMES, "results": results,
                   "seconds": time.perf_counter() - started})
    return 0


if __name__ == "__main__":
    sys.exit(main())
