"""2D pose from real photos: people found and keypoint accuracy against the human annotations
in ../shared/data, and the estimator's latency on one thread. Prints a table, writes JSON.

    .venv/bin/python benchmarks/pose2d.py [--rounds 20]

- COCO samples (4 photos, 12 annotated people): people found (a found person is matched to
  the annotation with the most keypoints within 0.2 x the annotation box's longer side),
  false people, and PCK@0.2 over the people found. Target (issue 22): 12 found, none false,
  PCK >= 0.95.
- MPII samples (5 photos, one annotated person each): PCKh@0.5 of the matched person, with half
  the head segment (head top to upper neck) as the threshold. Target >= 0.9.
- Latency per photo: detector, landmarks per person, whole (decode excluded), p50 and p99.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_results

from p2l3d_core.inference.blazepose import BlazePose

SHARED = ROOT.parent / "shared" / "data" / "poses" / "mmpose"
MPII_TO_BLAZEPOSE = {0: 28, 1: 26, 2: 24, 3: 23, 4: 25, 5: 27, 10: 16, 11: 14, 12: 12, 13: 11,
                     14: 13, 15: 15}


def coco(estimator: BlazePose) -> dict:
    data = json.loads((SHARED / "coco" / "test_coco.json").read_text())
    annotated = found = false = close = seen = 0
    for image in data["images"]:
        anns = [a for a in data["annotations"]
                if a["image_id"] == image["id"] and a["num_keypoints"] > 0]
        people = estimator.estimate(cv2.imread(str(SHARED / "coco" / image["file_name"])))
        annotated += len(anns)
        matched: set[int] = set()
        for person in people:
            best, best_hits, best_seen = None, 0, 0
            for k, a in enumerate(anns):
                truth = np.array(a["keypoints"], float).reshape(17, 3)
                visible = truth[:, 2] > 0
                limit = 0.2 * max(a["bbox"][2], a["bbox"][3])
                hits = int((np.linalg.norm(person.coco17[visible, :2] - truth[visible, :2], axis=1)
                            <= limit).sum())
                if k not in matched and hits > best_hits:
                    best, best_hits, best_seen = k, hits, int(visible.sum())
            if best is None:
                false += 1
                continue
            matched.add(best)
            found, close, seen = found + 1, close + best_hits, seen + best_seen
    return {"annotated": annotated, "found": found, "false": false,
            "pck@0.2": close / seen if seen else float("nan")}


def mpii(estimator: BlazePose) -> dict:
    hits = total = 0
    for a in json.loads((SHARED / "mpii" / "test_mpii.json").read_text()):
        people = estimator.estimate(cv2.imread(str(SHARED / "mpii" / a["image"])))
        joints = np.array(a["joints"])
        head = np.linalg.norm(joints[9] - joints[8])
        visible = [m for m in MPII_TO_BLAZEPOSE if a["joints_vis"][m]]
        best = max((sum(np.linalg.norm(p.landmarks[MPII_TO_BLAZEPOSE[m], :2] - joints[m])
                        <= 0.5 * head for m in visible) for p in people), default=0)
        hits, total = hits + best, total + len(visible)
    return {"people": 5, "pckh@0.5 (matched)": hits / total}


def latency(estimator: BlazePose, rounds: int) -> dict:
    images = [cv2.imread(str(p)) for p in sorted((SHARED / "coco").glob("*.jpg"))]
    images += [cv2.imread(str(p)) for p in sorted((SHARED / "mpii").glob("*.jpg"))]
    times: dict[str, list[float]] = {"detector": [], "landmarks, per person": [],
                                     "photo (detector + landmarks)": []}
    for _ in range(rounds):
        for image in images:
            start = time.perf_counter()
            detections = estimator.detect(image)
            times["detector"].append(time.perf_counter() - start)
            for d in detections:
                t = time.perf_counter()
                estimator.landmarks(image, d)
                times["landmarks, per person"].append(time.perf_counter() - t)
            times["photo (detector + landmarks)"].append(time.perf_counter() - start)
    return {name: {"p50_ms": 1000 * float(np.percentile(xs, 50)),
                   "p99_ms": 1000 * float(np.percentile(xs, 99)), "calls": len(xs)}
            for name, xs in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=20, help="latency rounds over the 9 photos")
    args = p.parse_args()
    cv2.setNumThreads(1)
    estimator = BlazePose(threads=1)
    results = {"estimator": "blazepose (mediapipe 0.10.21 files, LiteRT, 1 thread)",
               "coco": coco(estimator), "mpii": mpii(estimator),
               "latency": latency(estimator, args.rounds)}
    c, m = results["coco"], results["mpii"]
    print(f"COCO samples: {c['found']} of {c['annotated']} people found (target 12), "
          f"{c['false']} false, PCK@0.2 over found {c['pck@0.2']:.3f} (target 0.95)")
    print(f"MPII samples: PCKh@0.5 of the annotated person {m['pckh@0.5 (matched)']:.3f} "
          "(target 0.9)")
    print(f"\n{'one thread':32} {'p50 ms':>8} {'p99 ms':>8} {'calls':>6}")
    for name, row in results["latency"].items():
        print(f"{name:32} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {row['calls']:6d}")
    write_results("pose2d", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
