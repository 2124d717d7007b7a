"""Free against grammar-constrained caption decoding (issue 27): what the captions claim.

    .venv/bin/python benchmarks/caption_grammar.py --run runs/quickstart [--poses 200]

For each trained model of the run (student, teacher, baseline_2d where present) and each set
(the dataset's test split and every rendered real set under RUN/real/), the captions are
decoded four ways: free (greedy, n-gram repetition rule), within the caption grammar, and
within it with only the clauses the answer head backs (at 0.8, and at the predictor's default
threshold), and scored: caption precision (the share of claims true on the true
3D, malformed clauses false; ``evaluation/claims.py``), malformed clauses per caption, BLEU-4
and the time per caption. Prints a table, writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_results

from p2l3d_core import storage
from p2l3d_core.dataset.shards import load_table
from p2l3d_core.evaluation.claims import caption_precision
from p2l3d_core.evaluation.methods import EvalSet, ModelMethod
from p2l3d_core.evaluation.metrics import caption_scores
from p2l3d_core.inference.predictor import GUIDE_THRESHOLD
from p2l3d_core.models.io import load_pretrained


def sets_of(run: Path, poses: int) -> dict[str, EvalSet]:
    out = {"test": EvalSet.from_table("test", load_table(str(run / "dataset"), split="test"),
                                      limit=poses)}
    for folder in sorted((run / "real").glob("*")) if (run / "real").is_dir() else []:
        if (folder / "manifest.json").exists():
            out[folder.name] = EvalSet.from_table(folder.name, load_table(str(folder)),
                                                  limit=poses)
    return out


MODES = {"free": (False, None), "grammar": (True, None), "backed 0.8": (True, 0.8),
         "backed": (True, GUIDE_THRESHOLD)}


def score(method: ModelMethod, data: EvalSet, mode: str) -> dict:
    method.predictor.constrained, method.predictor.guide_threshold = MODES[mode]
    t0 = time.perf_counter()
    captions = method.predict(data).captions
    seconds = time.perf_counter() - t0
    out = caption_precision(captions, data.joints_3d, data.camera_positions, data.actions)
    out.update(caption_scores(captions, data.captions, meteor=False))
    return {"caption_precision": out.get("caption_precision"),
            "malformed_per_caption": out["caption_malformed"] / max(len(captions), 1),
            "claims_per_caption": out["caption_claims"] / max(len(captions), 1),
            "BLEU-4": out["BLEU-4"], "ms_per_pose": 1000 * seconds / max(len(captions), 1),
            "example": captions[0] if captions else ""}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, default=ROOT / "runs" / "quickstart")
    p.add_argument("--poses", type=int, default=200, help="poses per set (at most)")
    p.add_argument("--models", default="student,teacher,baseline_2d")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    sets = sets_of(args.run, args.poses)
    rows, results = [], {}
    for name in args.models.split(","):
        folder = args.run / name if name != "baseline_2d" else args.run / "baselines" / name
        if not storage.exists(str(folder / "model.safetensors")):
            continue
        method = ModelMethod(name, load_pretrained(str(folder)))
        for set_name, data in sets.items():
            for mode in MODES:
                r = score(method, data, mode)
                results[f"{name}/{set_name}/{mode}"] = r
                rows.append((name, set_name, mode, r))
    print(f"{'model':<12} {'set':<10} {'decoding':<10} {'precision':>9} {'malformed':>9} "
          f"{'claims':>6} {'BLEU-4':>6} {'ms/pose':>7}")
    for name, set_name, mode, r in rows:
        precision = r["caption_precision"]
        print(f"{name:<12} {set_name:<10} {mode:<10} "
              f"{precision if precision is None else round(precision, 3)!s:>9} "
              f"{r['malformed_per_caption']:>9.2f} {r['claims_per_caption']:>6.2f} "
              f"{r['BLEU-4']:>6.3f} {r['ms_per_pose']:>7.1f}")
    for name, set_name, mode, r in rows:
        if set_name == "test":
            print(f"  e.g. {name} {mode}: {r['example']}")
    write_results("caption_grammar", {"run": str(args.run), "poses": args.poses,
                                      "results": results})


if __name__ == "__main__":
    main()
