"""Why real bodies score lower (issue 27): every posecode's value, the generator against real 3D.

    .venv/bin/python benchmarks/real_motion_distributions.py [--poses 7200] [--seed 0]
        [--baseline-rev REV] [--tag NAME]

For every posecode the rules measure (knee and elbow angles, torso lean, ankle heights and ground
contact, which foot is forward, feet and hands distance, ...) it tabulates the raw value
(p5/p50/p95) and the share of each category (dead band included), both sides pooled:

- on the generator's poses, all actions and per action (standing, walking, running, jumping,
  sitting in the tables, every action in the JSON), with ``--baseline-rev`` also on the
  generator of a git revision (``git show REV:p2l3d_core/poses/generator.py``), so one run
  gives the before/after tables;
- on the real 3D samples in ../shared/data: CMU 131_01/02 (walking) and 131_03 (hop), the four
  Human3.6M and four MPI-INF-3DHP frames, the Panoptic bodies. Read here for this analysis
  only: nothing of them is trained on, copied, or fitted.

Then, per question family, how much of the answer the action label alone gives away: the
*action prior* answers each question with the generator's majority answer for that question
and the pose's action (real labels mapped with ``sources.generator_action``: walk -> walking,
hop -> jumping; unmapped labels get the all-action majority). High on the generator and low on
a real set means a model can score on the generator without measuring the body, and the
shortcut fails on real motion. ``unseen``: the share of a real set's answers that the generator
gives less than 2 % of the time for the same action.

No Ray, no models, no rendering: 10-30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_results

from p2l3d_core.language.posecodes import CODE_CATEGORIES, Posecodes, measure_posecodes
from p2l3d_core.language.questions import REGISTRY, answer_table
from p2l3d_core.poses import generator as current_generator
from p2l3d_core.poses.record import PoseRecord
from p2l3d_core.poses.sources import count_records, generator_action, load_records

SHARED = ROOT.parent / "shared" / "data"
REAL_SETS: dict[str, tuple[str, ...]] = {
    "CMU 131_01 walk": ("bvh:mocap/131_01.bvh@walking",),
    "CMU 131_02 walk": ("bvh:mocap/131_02.bvh@walking",),
    "CMU 131_03 hop": ("bvh:mocap/131_03.bvh@hop",),
    "H36M 4 frames": ("h36m:poses/mmpose/h36m/test_h36m_body3d.npz",),
    "3DHP 4 frames": ("h36m:poses/mmpose/mpi_inf_3dhp/test_3dhp_train.npz",
                      "h36m:poses/mmpose/mpi_inf_3dhp/test_3dhp_test.npz"),
    "Panoptic band": ("panoptic:poses/mmpose/panoptic_body3d",),
}
TABLE_ACTIONS = ("standing", "walking", "running", "jumping", "sitting")
PRIOR_ACTIONS = ("standing", "walking", "jumping")
UNSEEN_SHARE = 0.02


def _pooled(name: str, value: str | None = None
            ) -> Callable[[Posecodes], tuple[np.ndarray, np.ndarray]]:
    """Values and codes of a per-side posecode, both sides pooled."""
    v = value or name
    return lambda pc: (np.concatenate([pc.values[f"l_{v}"], pc.values[f"r_{v}"]]),
                       np.concatenate([pc.codes[f"l_{name}"], pc.codes[f"r_{name}"]]))


def _body(name: str, value: str | None = None) -> Callable[[Posecodes], tuple]:
    return lambda pc: (pc.values[value or name], pc.codes[name])


def _contact(pc: Posecodes) -> tuple[np.ndarray, np.ndarray]:
    """Ground contact answer: 0 both, 1 only left, 2 only right, 3 neither, -1 unknown; the
    value is the lower ankle's height."""
    lg, rg = pc.codes["l_foot_ground"], pc.codes["r_foot_ground"]
    code = np.where((lg >= 0) & (rg >= 0), 2 * lg + rg, -1)
    code = np.select([code == 1, code == 2], [2, 1], code)  # (0,1) -> only left, (1,0) right
    low = np.fmin(pc.values["l_foot_ground"], pc.values["r_foot_ground"])
    return low, code.astype(np.int8)


# quantity -> (unit, family it answers, extractor, category names)
QUANTITIES: dict[str, tuple[str, str, Callable, tuple[str, ...]]] = {
    "knee angle": ("deg, 180 straight", "joint_bend", _pooled("knee"), CODE_CATEGORIES["l_knee"]),
    "elbow angle": ("deg, 180 straight", "joint_bend", _pooled("elbow"),
                    CODE_CATEGORIES["l_elbow"]),
    "lean forward/back": ("deg, + forward", "torso_lean", _body("lean_fb"),
                          CODE_CATEGORIES["lean_fb"]),
    "lean left/right": ("deg, + left", "(captions)", _body("lean_lr"), CODE_CATEGORIES["lean_lr"]),
    "torso tilt": ("deg from vertical", "(captions)", _body("torso"), CODE_CATEGORIES["torso"]),
    "ankle height": ("m above the floor", "ground_contact", _pooled("foot_ground"),
                     CODE_CATEGORIES["l_foot_ground"]),
    "ground contact": ("lower ankle, m", "ground_contact", _contact,
                       ("both", "only left", "only right", "neither")),
    "foot forward": ("m, left ahead of right", "foot_forward", _body("foot_forward"),
                     CODE_CATEGORIES["foot_forward"]),
    "feet distance": ("hip widths", "feet_distance", _body("feet_distance"),
                      CODE_CATEGORIES["feet_distance"]),
    "knee height": ("m above the hip", "knee_height", _pooled("knee_height"),
                    CODE_CATEGORIES["l_knee_height"]),
    "thigh direction": ("deg from down", "(captions)", _pooled("thigh"),
                        CODE_CATEGORIES["l_thigh"]),
    "knee on ground": ("knee height, m", "(captions)", _pooled("knee_ground"),
                       CODE_CATEGORIES["l_knee_ground"]),
    "upper arm direction": ("deg from down", "(captions)", _pooled("upper_arm"),
                            CODE_CATEGORIES["l_upper_arm"]),
    "hand height": ("m over the head top", "hand_height", _pooled("hand_height", "hand_over_head"),
                    CODE_CATEGORIES["l_hand_height"]),
    "hand depth": ("m in front of the thorax", "hand_front_back", _pooled("hand_depth"),
                   CODE_CATEGORIES["l_hand_depth"]),
    "hand side": ("m on its own side", "hand_side", _pooled("hand_side"),
                  CODE_CATEGORIES["l_hand_side"]),
    "hand to head": ("m", "(captions)", _pooled("hand_head"), CODE_CATEGORIES["l_hand_head"]),
    "hands distance": ("m", "hands_distance", _body("hands_distance"),
                       CODE_CATEGORIES["hands_distance"]),
    "hand forward": ("m, left ahead of right", "hand_forward", _body("hand_forward"),
                     CODE_CATEGORIES["hand_forward"]),
}
REPORT_QUANTITIES = ("knee angle", "elbow angle", "lean forward/back", "ankle height",
                     "ground contact", "foot forward", "feet distance")

# The first paraphrase of every question: family -> questions.
FIRST_QUESTIONS = {q: f.name for f in REGISTRY for table in f.tables for q in [table[0][0][0]]}


def load_generator(rev: str | None):
    """The generator module now, or as it was at git revision ``rev``."""
    if rev is None:
        return current_generator
    source = subprocess.run(["git", "show", f"{rev}:p2l3d_core/poses/generator.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"generator_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"generator_{rev}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def measure(records: list[PoseRecord]) -> Posecodes:
    return measure_posecodes(np.stack([r.joints_3d for r in records]),
                             np.stack([r.camera.position for r in records]))


def quantity_stats(pc: Posecodes, extractor: Callable, categories: tuple[str, ...]) -> dict:
    values, codes = extractor(pc)
    finite = values[np.isfinite(values)]
    q = np.percentile(finite, [5, 50, 95]).tolist() if len(finite) else [float("nan")] * 3
    share = {c: float((codes == i).mean()) for i, c in enumerate(categories)}
    share["dead band"] = float((codes == -1).mean())
    return {"n": len(values), "p5_50_95": q, "share": share}


def answers(pc: Posecodes, actions: list[str]) -> list[dict[str, str]]:
    """Per pose: question (first paraphrase) -> answer, for every question the rules ask."""
    out = []
    for i, action in enumerate(actions):
        table = answer_table(pc, i, action)
        out.append({q: a for q, a in table.items() if q in FIRST_QUESTIONS})
    return out


def action_prior(gen_answers: list[dict[str, str]], gen_actions: list[str]):
    """The generator's majority answer per (action, question), and per question."""
    by_action: dict[tuple[str, str], Counter] = defaultdict(Counter)
    by_question: dict[str, Counter] = defaultdict(Counter)
    for row, action in zip(gen_answers, gen_actions):
        for q, a in row.items():
            by_action[action, q][a] += 1
            by_question[q][a] += 1
    return ({k: c.most_common(1)[0][0] for k, c in by_action.items()},
            {k: c.most_common(1)[0][0] for k, c in by_question.items()})


def prior_accuracy(rows: list[dict[str, str]], mapped: list[str | None], prior) -> dict:
    """Accuracy per family of answering with the action prior (see the module docstring)."""
    per_action, per_question = prior
    hits: dict[str, list[bool]] = defaultdict(list)
    for row, action in zip(rows, mapped):
        for q, a in row.items():
            family = FIRST_QUESTIONS[q]
            if family == "action":
                continue
            guess = per_action.get((action, q)) if action else None
            guess = guess or per_question.get(q)
            hits[family].append(guess == a)
    return {f: {"questions": len(h), "accuracy": float(np.mean(h))} for f, h in hits.items()}


def generator_sets(module, seed: int, poses: int, label: str) -> tuple[dict, dict]:
    t0 = time.perf_counter()
    records = module.generate_records(seed, 0, poses)
    seconds = time.perf_counter() - t0
    pc = measure(records)
    actions = [r.action for r in records]
    sets = {f"{label}, all actions": (pc, list(range(len(records))))}
    for action in module.ACTIONS:
        idx = [i for i, a in enumerate(actions) if a == action]
        sets[f"{label}, {action}"] = (pc, idx)
    rows = answers(pc, actions)
    return sets, {"records": records, "codes": pc, "answers": rows, "actions": actions,
                  "seconds": seconds}


def _subset(pc: Posecodes, idx: list[int]) -> Posecodes:
    return Posecodes({k: v[idx] for k, v in pc.codes.items()},
                     {k: v[idx] for k, v in pc.values.items()}, len(idx))


def real_sets(seed: int) -> dict[str, list[PoseRecord]]:
    out = {}
    for name, specs in REAL_SETS.items():
        records = []
        for spec in specs:
            kind, _, rest = spec.partition(":")
            full = f"{kind}:{SHARED / rest}"
            path = (SHARED / rest.split("@")[0])
            if not path.exists():
                print(f"skipping {name}: {path} not found")
                break
            records += load_records(full, seed, 0, count_records(full, seed))
        else:
            out[name] = records
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--poses", type=int, default=7200, help="generator poses (400 per action)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline-rev", default=None,
                   help="also measure the generator of this git revision (before/after)")
    p.add_argument("--tag", default="", help="results file suffix")
    args = p.parse_args()
    t_start = time.perf_counter()

    generators = {"generator": load_generator(None)}
    if args.baseline_rev:
        generators[f"generator@{args.baseline_rev}"] = load_generator(args.baseline_rev)
    sets: dict[str, tuple[Posecodes, list[int]]] = {}
    gen_data = {}
    for label, module in generators.items():
        s, data = generator_sets(module, args.seed, args.poses, label)
        sets.update(s)
        gen_data[label] = data
    reals = real_sets(args.seed)
    real_data = {}
    for name, records in reals.items():
        pc = measure(records)
        mapped = [generator_action(r.action) for r in records]
        real_data[name] = {"codes": pc, "answers": answers(pc, [r.action for r in records]),
                           "mapped": mapped, "labels": dict(Counter(r.action for r in records))}
        sets[name] = (pc, list(range(len(records))))

    results: dict = {"poses": args.poses, "seed": args.seed, "baseline_rev": args.baseline_rev,
                     "generator_seconds": {k: v["seconds"] for k, v in gen_data.items()},
                     "real_labels": {k: {"labels": v["labels"],
                                         "generator_action": {lab: generator_action(lab)
                                                              for lab in v["labels"]}}
                                     for k, v in real_data.items()},
                     "quantities": {}, "unseen": {}, "action_prior": {}}
    for quantity, (unit, family, extractor, categories) in QUANTITIES.items():
        results["quantities"][quantity] = {
            "unit": unit, "family": family,
            "sets": {name: quantity_stats(_subset(pc, idx), extractor, categories)
                     for name, (pc, idx) in sets.items()}}

    # Answers the generator (nearly) never gives for the real set's action.
    for label in generators:
        for name, data in real_data.items():
            row = {}
            for quantity, (_, family, extractor, categories) in QUANTITIES.items():
                _, codes = extractor(data["codes"])
                mapped = data["mapped"] * (len(codes) // len(data["mapped"]))
                unseen = total = 0
                for code, action in zip(codes, mapped):
                    if code < 0 or action is None:
                        continue
                    share = results["quantities"][quantity]["sets"][f"{label}, {action}"]["share"]
                    total += 1
                    unseen += share[categories[code]] < UNSEEN_SHARE
                row[quantity] = {"answered": total, "unseen": unseen / total if total else None}
            results["unseen"].setdefault(label, {})[name] = row

    for label, data in gen_data.items():
        prior = action_prior(data["answers"], data["actions"])
        out = {label: prior_accuracy(data["answers"], data["actions"], prior)}
        for action in PRIOR_ACTIONS:  # how much the action gives away where it matters most
            idx = [i for i, a in enumerate(data["actions"]) if a == action]
            out[f"{label}, {action}"] = prior_accuracy([data["answers"][i] for i in idx],
                                                       [action] * len(idx), prior)
        for name, rd in real_data.items():
            out[name] = prior_accuracy(rd["answers"], rd["mapped"], prior)
        results["action_prior"][label] = out
    results["seconds"] = time.perf_counter() - t_start
    print_tables(results, list(generators))
    write_results("real_motion_distributions" + (f"_{args.tag}" if args.tag else ""), results)
    return 0


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def print_tables(results: dict, labels: list[str]) -> None:
    shown = [f"{label}, {a}" for label in labels for a in ("all actions", *TABLE_ACTIONS)]
    shown += list(results["real_labels"])
    for quantity in QUANTITIES:
        q = results["quantities"][quantity]
        cats = list(next(iter(q["sets"].values()))["share"])
        digits = 0 if "deg" in q["unit"] else 2
        print(f"\n### {quantity} ({q['unit']}; family {q['family']})\n")
        print("| poses | n | p5 | p50 | p95 | " + " | ".join(cats) + " |")
        print("|---" * (5 + len(cats)) + "|")
        for name in shown:
            row = q["sets"].get(name)
            if row is None:
                continue
            p5, p50, p95 = row["p5_50_95"]
            print(f"| {name} | {row['n']} | {_fmt(p5, digits)} | {_fmt(p50, digits)} | "
                  f"{_fmt(p95, digits)} | " + " | ".join(f"{row['share'][c]:.2f}" for c in cats)
                  + " |")
    for label in labels:
        names = list(results["unseen"][label])
        print(f"\n### answers {label} gives < {UNSEEN_SHARE:.0%} of the time for the same "
              "action (share of each real set's answers)\n")
        print("| quantity | " + " | ".join(names) + " |")
        print("|---" * (1 + len(names)) + "|")
        for quantity in QUANTITIES:
            cells = [results["unseen"][label][n][quantity] for n in names]
            print(f"| {quantity} | " + " | ".join(
                _fmt(c["unseen"]) + f" ({c['answered']})" if c["unseen"] is not None else "-"
                for c in cells) + " |")
        prior = results["action_prior"][label]
        names = list(prior)
        families = sorted({f for v in prior.values() for f in v},
                          key=[f.name for f in REGISTRY].index)
        print(f"\n### action prior of {label}: accuracy of the majority answer per "
              "(action, question)\n")
        print("| family | " + " | ".join(names) + " |")
        print("|---" * (1 + len(names)) + "|")
        for f in families:
            print(f"| {f} | " + " | ".join(
                f"{prior[n][f]['accuracy']:.2f} ({prior[n][f]['questions']})" if f in prior[n]
                else "-" for n in names) + " |")
    print("\nreal labels -> generator action: " + "; ".join(
        f"{k}: " + ", ".join(f"{lab} -> {m}" for lab, m in v["generator_action"].items())
        for k, v in results["real_labels"].items()))
    print(f"\ngenerator seconds: {results['generator_seconds']}; total {results['seconds']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
