"""Can a single frame of a real clip show its action label? (issue 27, the action family)

    .venv/bin/python benchmarks/clip_motion.py [--clip NAME=FILE.bvh ...] [--still 0.2]

A real set built from a mocap clip labels every frame with the clip's action (``bvh:FILE@walking``
in the quickstart), but CMU's 131_01 / 131_02 are "Start Walk Stop" and 131_03 "Start Hop Stop":
some frames stand still, and a hop shows as a jump only while both feet are off the ground. Per
clip, over the frames the evaluation renders (every ``sources.BVH_EVERY``-th, on the same floor):

- the pelvis's horizontal speed over half a second around the frame (from the full-rate clip):
  the share of frames under ``--still`` m/s, over 0.5 m/s, and the fastest;
- the share of frames with both ankles, and with at least one, off the ground by the rules
  (``posecodes.ANKLE_OFF_GROUND``);
- the pelvis's lowest height (a crouch).

Defaults to the three CMU clips in ``../shared/data/mocap`` (read for this analysis only).
Prints a table and writes ``benchmarks/results/clip_motion.json``. No Ray, no models: seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_results

from p2l3d_core.language.posecodes import ANKLE_OFF_GROUND
from p2l3d_core.poses.bvh import read_bvh
from p2l3d_core.poses.sources import BVH_EVERY
from p2l3d_core.skeleton import J

MOCAP = ROOT.parent / "shared" / "data" / "mocap"
CLIPS = {"cmu_walk": MOCAP / "131_01.bvh", "cmu_walk2": MOCAP / "131_02.bvh",
         "cmu_hop": MOCAP / "131_03.bvh"}
WINDOW_S = 0.5


def pelvis_speed(pelvis: np.ndarray, fps: float) -> np.ndarray:
    """Per frame of a full-rate clip's ``(N, 3)`` pelvis, its horizontal speed (m/s) over
    :data:`WINDOW_S` centred on the frame (shorter at the clip's ends)."""
    half = max(1, round(WINDOW_S / 2 * fps))
    frames = np.arange(len(pelvis))
    before = np.clip(frames - half, 0, len(pelvis) - 1)
    after = np.clip(frames + half, 0, len(pelvis) - 1)
    seconds = np.maximum(after - before, 1) / fps
    return np.linalg.norm(pelvis[after, :2] - pelvis[before, :2], axis=-1) / seconds


def clip_motion(path: Path, still: float) -> dict[str, float]:
    """The table's numbers for one clip (see the module docstring): the clip read as the
    evaluation reads it (``read_bvh``), every frame for the speed, every ``BVH_EVERY``-th
    for the rest."""
    records = read_bvh(path)
    joints = np.stack([r.joints_3d for r in records])
    speed = pelvis_speed(joints[:, J["pelvis"]], records[0].meta["fps"])[::BVH_EVERY]
    joints = joints[::BVH_EVERY]
    ankles = joints[:, [J["l_ankle"], J["r_ankle"]], 2]
    off = ANKLE_OFF_GROUND[0]  # the lower edge of "off the ground"
    return {"frames": len(joints),
            "still": float((speed < still).mean()),
            "moving": float((speed > 0.5).mean()),
            "fastest_m_s": float(speed.max()),
            "both_feet_off": float((ankles.min(1) > off).mean()),
            "a_foot_off": float((ankles.max(1) > off).mean()),
            "lowest_pelvis_m": float(joints[:, J["pelvis"], 2].min())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", action="append", default=None, metavar="NAME=FILE",
                   help="a BVH clip (repeatable; default the three CMU clips of ../shared/data)")
    p.add_argument("--still", type=float, default=0.2, help="pelvis speed under which a frame "
                   "counts as standing still (m/s)")
    args = p.parse_args()
    malformed = [c for c in args.clip or () if "=" not in c or not c.split("=", 1)[0]]
    if malformed:
        p.error(f"--clip wants NAME=FILE.bvh, got {', '.join(map(repr, malformed))}")
    clips = dict(c.split("=", 1) for c in args.clip) if args.clip else CLIPS
    missing = [str(f) for f in clips.values() if not Path(f).is_file()]
    if missing:
        p.error(f"no such clip file: {', '.join(missing)}")
    started = time.perf_counter()
    try:
        results = {name: clip_motion(Path(f), args.still) for name, f in clips.items()}
    except ValueError as e:  # a malformed BVH: the reader names the file and line
        p.error(str(e))
    print(f"| clip | frames | still (< {args.still:g} m/s) | moving (> 0.5 m/s) | fastest m/s "
          f"| both feet off | a foot off | lowest pelvis m |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['frames']} | {r['still']:.2f} | {r['moving']:.2f} | "
              f"{r['fastest_m_s']:.2f} | {r['both_feet_off']:.3f} | {r['a_foot_off']:.2f} | "
              f"{r['lowest_pelvis_m']:.2f} |")
    write_results("clip_motion", {"clips": {k: str(v) for k, v in clips.items()},
                                  "still_m_s": args.still, "window_s": WINDOW_S,
                                  "results": results,
                                  "seconds": time.perf_counter() - started})
    return 0


if __name__ == "__main__":
    sys.exit(main())
