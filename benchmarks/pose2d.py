"""2D pose from real photos and a video: people found and keypoint accuracy against the human
annotations in ../shared/data, and latency on one thread, for three estimators side by side.
Prints a table, writes JSON.

    .venv/bin/python benchmarks/pose2d.py [--rounds 10]

Estimators: ``blazepose`` (mediapipe 0.10.21's detector + landmarks, LiteRT), ``movenet``
(MoveNet MultiPose Lightning at long side 256, torch), ``movenet+blazepose`` (each MoveNet
person refined by BlazePose's landmark model on a region built from its keypoints; the MoveNet
person is kept where the landmark model says nobody is there). All report COCO-17 keypoints.

- COCO samples (4 photos, 12 annotated people): people found (a found person is matched to the
  annotation with the most keypoints within 0.2 x the annotation box's longer side), false
  people, and PCK@0.2 over the people found. Target (issue 22): 12 found, none false,
  PCK >= 0.95.
- MPII samples (5 photos, one annotated person each): PCKh@0.5 of the best-matching person,
  with half the head segment (head top to upper neck) as the threshold. Target >= 0.9.
- H36M (4 frames) and MPI-INF-3DHP (4 frames): PCK@0.2 (0.2 x the longer side of the
  annotated joints' box) of the best-matching person on the 12 joints both layouts share
  (shoulders, elbows, wrists, hips, knees, ankles).
- two_people_indoor.mp4: frames (all of them) where exactly 2 people are found.
- Latency per photo (the 9 COCO + MPII photos, decode excluded), p50 and p99, one thread, the
  estimators alternating each round.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_results

from p2l3d_core.inference.blazepose import BlazePose, detection_from_coco17
from p2l3d_core.inference.movenet import MoveNetMultiPose, PersonPose

SHARED = ROOT.parent / "shared" / "data"
MMPOSE = SHARED / "poses" / "mmpose"
VIDEO = SHARED / "videos" / "two_people_indoor.mp4"
# Annotation joint -> COCO-17 keypoint (ankles, knees, hips, wrists, elbows, shoulders).
MPII_TO_COCO = {0: 16, 1: 14, 2: 12, 3: 11, 4: 13, 5: 15, 10: 10, 11: 8, 12: 6, 13: 5, 14: 7,
                15: 9}
H36M_TO_COCO = {1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 11: 5, 12: 7, 13: 9, 14: 6, 15: 8,
                16: 10}
# mmpose's MPI-INF-3DHP 17: head top, neck, R shoulder/elbow/wrist, L ..., R hip/knee/ankle,
# L ..., root, spine, head.
MPI3DHP_TO_COCO = {2: 6, 3: 8, 4: 10, 5: 5, 6: 7, 7: 9, 8: 12, 9: 14, 10: 16, 11: 11, 12: 13,
                   13: 15}
Estimator = Callable[[np.ndarray], list[PersonPose]]


def blazepose_alone(blazepose: BlazePose) -> Estimator:
    def estimate(image: np.ndarray) -> list[PersonPose]:
        return [PersonPose(np.array(p.bbox(), np.float32), p.score, p.coco17)
                for p in blazepose.estimate(image)]

    return estimate


def movenet_refined(movenet: MoveNetMultiPose, blazepose: BlazePose) -> Estimator:
    def estimate(image: np.ndarray) -> list[PersonPose]:
        out = []
        for person in movenet(image):
            refined = blazepose.landmarks(
                image, detection_from_coco17(person.keypoints, person.bbox, person.score))
            out.append(person if refined is None else
                       PersonPose(person.bbox, person.score, refined.coco17.astype(np.float32)))
        return out

    return estimate


def coco(estimate: Estimator) -> dict:
    data = json.loads((MMPOSE / "coco" / "test_coco.json").read_text())
    annotated = found = false = close = seen = 0
    for image in data["images"]:
        anns = [a for a in data["annotations"]
                if a["image_id"] == image["id"] and a["num_keypoints"] > 0]
        people = estimate(cv2.imread(str(MMPOSE / "coco" / image["file_name"])))
        annotated += len(anns)
        matched: set[int] = set()
        for person in people:
            best, best_hits, best_seen = None, 0, 0
            for k, a in enumerate(anns):
                truth = np.array(a["keypoints"], float).reshape(17, 3)
                visible = truth[:, 2] > 0
                limit = 0.2 * max(a["bbox"][2], a["bbox"][3])
                hits = int((np.linalg.norm(person.keypoints[visible, :2] - truth[visible, :2],
                                           axis=1) <= limit).sum())
                if k not in matched and hits > best_hits:
                    best, best_hits, best_seen = k, hits, int(visible.sum())
            if best is None:
                false += 1
                continue
            matched.add(best)
            found, close, seen = found + 1, close + best_hits, seen + best_seen
    return {"annotated": annotated, "found": found, "false": false,
            "pck@0.2": close / seen if seen else float("nan")}


def best_hits(people: list[PersonPose], joints: np.ndarray, mapping: dict[int, int],
              visible: list[int], limit: float) -> int:
    """Joints of the best-matching person within ``limit`` px of the annotation."""
    return max((sum(float(np.linalg.norm(p.keypoints[mapping[m], :2] - joints[m])) <= limit
                    for m in visible) for p in people), default=0)


def mpii(estimate: Estimator) -> dict:
    hits = total = 0
    for a in json.loads((MMPOSE / "mpii" / "test_mpii.json").read_text()):
        people = estimate(cv2.imread(str(MMPOSE / "mpii" / a["image"])))
        joints = np.array(a["joints"])
        head = np.linalg.norm(joints[9] - joints[8])
        visible = [m for m in MPII_TO_COCO if a["joints_vis"][m]]
        hits += best_hits(people, joints, MPII_TO_COCO, visible, 0.5 * head)
        total += len(visible)
    return {"people": 5, "pckh@0.5": hits / total}


def annotated_frames(estimate: Estimator, folder: Path, npz_names: list[str],
                     mapping: dict[int, int]) -> dict:
    """PCK@0.2 of the best-matching person on frames whose 2D annotation is ``part``."""
    hits = total = frames = 0
    for npz in npz_names:
        data = np.load(folder / npz)
        for name, part in zip(data["imgname"], data["part"], strict=True):
            image = cv2.imread(str(folder / str(name)))
            visible = [m for m in mapping if part[m, 2] > 0]
            xy = part[:, :2]
            limit = 0.2 * float((xy.max(0) - xy.min(0)).max())
            hits += best_hits(estimate(image), xy, mapping, visible, limit)
            total, frames = total + len(visible), frames + 1
    return {"frames": frames, "pck@0.2": hits / total}


def video_people(estimate: Estimator) -> dict:
    video = cv2.VideoCapture(str(VIDEO))
    counts = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        counts.append(len(estimate(frame)))
    return {"frames": len(counts), "exactly_2": sum(c == 2 for c in counts),
            "people_seen": sorted(set(counts))}


def latency(estimators: dict[str, Estimator], rounds: int) -> dict:
    images = [cv2.imread(str(p)) for p in sorted((MMPOSE / "coco").glob("*.jpg"))]
    images += [cv2.imread(str(p)) for p in sorted((MMPOSE / "mpii").glob("*.jpg"))]
    times: dict[str, list[float]] = {name: [] for name in estimators}
    for r in range(rounds + 1):  # round 0 warms up
        for name in (list(estimators) if r % 2 == 0 else list(estimators)[::-1]):
            for image in images:
                start = time.perf_counter()
                estimators[name](image)
                if r:
                    times[name].append(time.perf_counter() - start)
    return {name: {"p50_ms": 1000 * float(np.percentile(xs, 50)),
                   "p99_ms": 1000 * float(np.percentile(xs, 99)), "calls": len(xs)}
            for name, xs in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=10, help="latency rounds over the 9 photos")
    args = p.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    blazepose, movenet = BlazePose(threads=1), MoveNetMultiPose()
    estimators = {"blazepose": blazepose_alone(blazepose), "movenet": movenet,
                  "movenet+blazepose": movenet_refined(movenet, blazepose)}
    results: dict = {"setup": "one thread; BlazePose = mediapipe 0.10.21 files on LiteRT; "
                              "MoveNet MultiPose Lightning (human-models 3.0.4) on torch, "
                              "long side 256, score >= 0.1"}
    for name, estimate in estimators.items():
        results[name] = {
            "coco": coco(estimate), "mpii": mpii(estimate),
            "h36m": annotated_frames(estimate, MMPOSE / "h36m", ["test_h36m_body3d.npz"],
                                     H36M_TO_COCO),
            "mpi_inf_3dhp": annotated_frames(estimate, MMPOSE / "mpi_inf_3dhp",
                                             ["test_3dhp_test.npz", "test_3dhp_train.npz"],
                                             MPI3DHP_TO_COCO),
            "two_people_indoor": video_people(estimate)}
    for name, row in latency(estimators, args.rounds).items():
        results[name]["latency"] = row
    print(f"\n{'estimator':18} {'COCO found':>10} {'false':>5} {'PCK@.2':>6} {'MPII':>6} "
          f"{'H36M':>6} {'3DHP':>6} {'video =2':>9} {'p50 ms':>7} {'p99 ms':>7}")
    for name in estimators:
        r = results[name]
        c, v = r["coco"], r["two_people_indoor"]
        print(f"{name:18} {c['found']:>5}/{c['annotated']:<4} {c['false']:>5} "
              f"{c['pck@0.2']:6.3f} {r['mpii']['pckh@0.5']:6.3f} {r['h36m']['pck@0.2']:6.3f} "
              f"{r['mpi_inf_3dhp']['pck@0.2']:6.3f} {v['exactly_2']:>4}/{v['frames']:<4} "
              f"{r['latency']['p50_ms']:7.1f} {r['latency']['p99_ms']:7.1f}")
    print("(COCO PCK@0.2 over found people; MPII PCKh@0.5; H36M/3DHP PCK@0.2 on 12 shared "
          "joints; video: frames with exactly 2 people; latency per photo, one thread)")
    write_results("pose2d", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
