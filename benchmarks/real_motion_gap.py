"""Why the models answer worse on real bodies (issue 27): two measurements, a table and JSON.

    .venv/bin/python benchmarks/real_motion_gap.py --run runs/quickstart [--poses 60]

1. The knee angle the rules measure (180 = straight), and the joint_bend category it falls in,
   on the generator's poses (overall and per action) against the real CMU clips in
   ../shared/data (walking 131_01, hopping 131_03).
2. A probe of the run's models: standing poses from the generator with only the right knee
   flexed (0, 20, ... 100 degrees, everything else unchanged), rendered like the training set;
   each model is asked the right knee's joint_bend questions, and its answers are compared with
   the rules' on the true 3D. A model that measures the knee follows the flexion; one that
   learned "standing means straight legs" does not.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_results

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.build import build_table
from p2l3d_core.evaluation.methods import EvalSet, ModelMethod
from p2l3d_core.language.posecodes import BEND, body_axes, measure_posecodes
from p2l3d_core.models.io import load_pretrained, read_config
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.poses.record import PoseRecord
from p2l3d_core.poses.sources import count_records, load_records
from p2l3d_core.skeleton import J
from p2l3d_core.training.plan import find_models

MOCAP = ROOT.parent / "shared" / "data" / "mocap"
FLEXIONS = (0, 20, 40, 60, 80, 100)


def knee_stats(records: list[PoseRecord]) -> dict:
    joints = np.stack([r.joints_3d for r in records])
    pc = measure_posecodes(joints)
    angles = np.concatenate([pc.values["l_knee"], pc.values["r_knee"]])
    codes = np.concatenate([pc.codes["l_knee"], pc.codes["r_knee"]])
    share = {(BEND[i] if i >= 0 else "dead band"): float((codes == i).mean())
             for i in (0, 1, 2, 3, -1)}
    return {"poses": len(records),
            "knee_angle_p5_50_95": [float(v) for v in np.nanpercentile(angles, [5, 50, 95])],
            "category_share": share}


def distributions(seed: int) -> dict:
    generated = generate_records(seed, 0, 8000)
    out = {"generator, all actions": knee_stats(generated)}
    for action in ("standing", "walking", "running", "jumping"):
        out[f"generator, {action}"] = knee_stats([r for r in generated if r.action == action])
    for clip, action in (("131_01.bvh", "walking"), ("131_03.bvh", "hop")):
        if (MOCAP / clip).exists():
            spec = f"bvh:{MOCAP / clip}@{action}"
            out[f"CMU {clip} ({action})"] = knee_stats(load_records(spec, seed, 0,
                                                                    count_records(spec)))
    return out


def flex_right_knee(record: PoseRecord, flexion: float) -> PoseRecord:
    """``record`` with the right shin turned so the knee is flexed ``flexion`` degrees (0:
    straight), backwards in the plane of the thigh and the body's forward axis."""
    p = record.joints_3d.copy()
    hip, knee, ankle = p[J["r_hip"]], p[J["r_knee"]], p[J["r_ankle"]]
    thigh = (knee - hip) / np.linalg.norm(knee - hip)
    forward = body_axes(p[None])[0][0]
    back = -(forward - forward.dot(thigh) * thigh)
    back /= np.linalg.norm(back)
    phi = np.deg2rad(flexion)
    p[J["r_ankle"]] = knee + np.linalg.norm(ankle - knee) * (np.cos(phi) * thigh
                                                             + np.sin(phi) * back)
    return PoseRecord(f"{record.pose_id}-flex{flexion}", p, record.camera, record.action,
                      "knee-probe")


def knee_probe(run: str, poses: int, seed: int) -> dict:
    models = find_models(run)
    image_size = read_config(models["student"][0])["model"]["vision"]["image_size"]
    standing = [r for r in generate_records(seed + 1, 0, poses * 20)
                if r.action == "standing"][:poses]
    records = [flex_right_knee(r, f) for f in FLEXIONS for r in standing]
    table = build_table(records, DatasetConfig(num_poses=len(records), image_size=image_size,
                                               num_captions=1)).table
    data = EvalSet.from_table("knee probe", table)
    flexion = {i: int(pid.rsplit("flex", 1)[1])
               for i, pid in enumerate(table.column("pose_id").to_pylist())}
    asked = [k for k, (q, f) in enumerate(zip(data.qa_question, data.qa_family))
             if f == "joint_bend" and "right" in q.lower() and ("knee" in q.lower()
                                                                or "leg" in q.lower())]
    out: dict = {"questions": len(asked), "by_flexion": {}}
    answers = {"rules_3d (truth)": {k: data.qa_answer[k] for k in asked}}
    for method in ("student", "teacher", "baseline_2d"):
        if method in models:
            predicted = ModelMethod(method, load_pretrained(models[method][0])).predict(data)
            answers[method] = {k: predicted.answers[k] for k in asked}
    for f in FLEXIONS:
        ks = [k for k in asked if flexion[data.qa_row[k]] == f]
        out["by_flexion"][f] = {name: dict(Counter(a[k] for k in ks))
                                for name, a in answers.items()}
        out["by_flexion"][f]["accuracy"] = {
            name: float(np.mean([a[k] == data.qa_answer[k] for k in ks])) if ks else float("nan")
            for name, a in answers.items() if name != "rules_3d (truth)"}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a run folder written by jobs/distill.py")
    p.add_argument("--poses", type=int, default=60, help="standing poses flexed per angle")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    results = {"knee": distributions(args.seed), "probe": knee_probe(args.run, args.poses,
                                                                      args.seed)}
    print("knee angle (degrees, 180 straight) and joint_bend category, both knees")
    print(f"{'poses':32} {'n':>5} {'p5':>5} {'p50':>5} {'p95':>5}  "
          + "  ".join(f"{c:>13}" for c in (*BEND, "dead band")))
    for name, row in results["knee"].items():
        q = row["knee_angle_p5_50_95"]
        print(f"{name:32} {row['poses']:5d} {q[0]:5.0f} {q[1]:5.0f} {q[2]:5.0f}  "
              + "  ".join(f"{row['category_share'][c]:13.3f}" for c in (*BEND, "dead band")))
    probe = results["probe"]
    names = [n for n in next(iter(probe["by_flexion"].values()))["accuracy"]]
    print(f"\nknee probe: {args.poses} standing poses, right knee flexed, "
          f"{probe['questions']} right-knee joint_bend questions; accuracy against the rules")
    print(f"{'flexion':>8} {'truth':40} " + " ".join(f"{n:>12}" for n in names))
    for f, row in probe["by_flexion"].items():
        truth = ", ".join(f"{k} {v}" for k, v in sorted(row["rules_3d (truth)"].items()))
        print(f"{f:>8} {truth:40} " + " ".join(f"{row['accuracy'][n]:12.2f}" for n in names))
    write_results("real_motion_gap", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
