"""How well can the knee and elbow bends be read from 2D keypoints? (issue 27, joint_bend)

    .venv/bin/python benchmarks/geometry_from_2d.py --run runs/quickstart [--epochs 60]
        [--tag NAME]

joint_bend asks a limb's 3D angle in four categories with 10-degree dead bands between them
(straight from 155 degrees, slightly bent 125-145, bent 70-115, fully bent under 60). A 2D
model must guess the angle from a projection. This table puts what the run's models answer
beside three readings of the same 2D keypoints, on the test split and on every real set the
run evaluated (``RUN/real/*``):

- ``2d_angle_rule``: the rules applied to the angle as the image shows it (no learning);
- ``regressor_fit_here``: an MLP fitted here on the run's training split (every row: 2D
  keypoint features -> the four 3D bend angles, ``--epochs`` epochs), categories by the
  nearest band. A ceiling for this training data and these inputs, not a model the run has;
- ``<method>_regressor``: the geometry regressor inside each model folder that has one
  (``models/geometry.py``): the numbers its answer head reads;
- ``<method>_answers``: each model's joint_bend answers (its answer head).

Accuracy is over the questions the rules ask (limbs outside the dead bands); MAE is over every
limb, in degrees. Prints a table and writes ``benchmarks/results/geometry_from_2d[-TAG].json``.
A few minutes on 2 cores (the regressor fit and one evaluation pass per model).
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
from p2l3d_core.language.posecodes import BEND_INTERVALS_DEG
from p2l3d_core.models.io import load_pretrained
from p2l3d_core.models.keypoints import LIMBS, bend_cosines, keypoint_features
from p2l3d_core.training.plan import find_models

LIMB_NAMES = ("left elbow", "right elbow", "left knee", "right knee")


def category(angles: np.ndarray) -> np.ndarray:
    """The rules' bend category of each angle (degrees), -1 in a dead band."""
    out = np.full(angles.shape, -1)
    for c, (low, high) in enumerate(BEND_INTERVALS_DEG):
        out[(angles >= low) & (angles < high)] = c
    return out


def nearest(angles: np.ndarray) -> np.ndarray:
    """The nearest category of an estimated angle: dead bands split at their middle."""
    cuts = [(BEND_INTERVALS_DEG[c][0] + BEND_INTERVALS_DEG[c + 1][1]) / 2 for c in range(3)]
    return np.select([angles >= cuts[0], angles >= cuts[1], angles >= cuts[2]], [0, 1, 2], 3)


def angles_of(cosines: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))


def features(data: EvalSet) -> np.ndarray:
    known = np.isfinite(data.keypoints_2d).all(-1) & data.visible
    return keypoint_features(data.keypoints_2d, known)


def fit_regressor(x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> torch.nn.Module:
    """2D keypoint features -> the four bend angles (tens of degrees), a plain MLP."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.GELU(),
                              torch.nn.Linear(256, 256), torch.nn.GELU(), torch.nn.Linear(256, 4))
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    xt, yt = torch.tensor(x), torch.tensor(y / 10.0, dtype=torch.float32)
    for _ in range(epochs):
        for b in torch.randperm(len(xt)).split(128):
            loss = torch.nn.functional.smooth_l1_loss(net(xt[b]), yt[b], beta=0.5)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def score(truth: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    asked = category(truth) >= 0
    return {"accuracy": float((nearest(estimate)[asked] == category(truth)[asked]).mean()),
            "mae_deg": float(np.abs(estimate - truth).mean())}


def answers_accuracy(method: ModelMethod, data: EvalSet) -> float:
    asked = [k for k, f in enumerate(data.qa_family) if f == "joint_bend"]
    got = method.predict(data).answers
    return float(np.mean([got[k] == data.qa_answer[k] for k in asked]))


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=60, help="epochs of the regressor fitted here")
    p.add_argument("--poses", type=int, default=300, help="poses per set (as the evaluation)")
    p.add_argument("--tag", default="")
    args = p.parse_args()
    started = time.perf_counter()
    dataset = args.data or storage.join(args.run, "dataset")
    train = load_table(dataset, "train", [Column.KEYPOINTS_2D, Column.VISIBLE_2D,
                                          Column.KEYPOINTS_3D])
    kp = np.array(train.column(Column.KEYPOINTS_2D).to_pylist(), dtype=np.float64)
    vis = np.array(train.column(Column.VISIBLE_2D).to_pylist(), dtype=bool)
    j3 = np.array(train.column(Column.KEYPOINTS_3D).to_pylist(), dtype=np.float64)
    x = keypoint_features(kp, vis & np.isfinite(kp).all(-1))
    y = angles_of(bend_cosines(j3, np.ones(j3.shape[:2], dtype=bool)))
    print(f"fitting the regressor on {len(x)} training poses, {args.epochs} epochs")
    net = fit_regressor(x, y, args.epochs)

    sets = {"test": EvalSet.from_table("test", load_table(dataset, "test", EVAL_COLUMNS),
                                       args.poses)}
    real = Path(args.run) / "real"
    for folder in sorted(real.iterdir()) if real.is_dir() else []:
        sets[folder.name] = EvalSet.from_table(folder.name,
                                               load_table(str(folder), None, EVAL_COLUMNS),
                                               args.poses)
    models = {m: load_pretrained(paths[0]) for m, paths in find_models(args.run).items()}
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, data in sets.items():
        truth = angles_of(bend_cosines(data.joints_3d, np.ones(data.joints_3d.shape[:2], bool)))
        x2 = features(data)
        row = {"2d_angle_rule": score(truth, angles_of(x2[:, -len(LIMBS):])),
               "regressor_fit_here": score(truth, net(torch.tensor(x2)).detach().numpy() * 10)}
        for method, model in models.items():
            if getattr(model, "geometry", None) is not None:
                with torch.no_grad():
                    got = model.geometry(torch.tensor(x2))[:, :len(LIMBS)].numpy() * 10
                row[f"{method}_regressor"] = score(truth, got)
            row[f"{method}_answers"] = {"accuracy": answers_accuracy(ModelMethod(method, model),
                                                                     data)}
        results[name] = row
    columns = list(dict.fromkeys(c for row in results.values() for c in row))
    print("\njoint_bend accuracy (bend MAE in degrees)\n")
    print("| set | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, row in results.items():
        cells = []
        for c in columns:
            v = row.get(c)
            cells.append("-" if v is None else f"{v['accuracy']:.3f}"
                         + (f" ({v['mae_deg']:.1f})" if "mae_deg" in v else ""))
        print(f"| {name} | " + " | ".join(cells) + " |")
    write_results("geometry_from_2d" + (f"-{args.tag}" if args.tag else ""),
                  {"run": args.run, "epochs": args.epochs, "poses": args.poses,
                   "limbs": LIMB_NAMES, "results": results,
                   "seconds": time.perf_counter() - started})
    return 0


if __name__ == "__main__":
    sys.exit(main())
