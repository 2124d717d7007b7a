"""Where the floor is under a body: one convention for generated and real 3D.

The rules measure heights above the floor (a foot on the ground has its ankle under 15 cm, off
it over 22 cm), so the floor must be where a real floor would be, for the generator's bodies and
for every real set alike. Joint centres never touch the floor: each rests at its anatomical
height (:data:`FLOOR_CLEARANCE`), so a body's *floor gap* is its lowest joint's height above
that joint's clearance, 0 for a body standing (or lying, kneeling) on the floor.

The generator puts each pose's gap at 0 (or its jump's lift). A real capture whose files give no
floor gets one the same way: a single pose (3DHP, Panoptic bodies) stands on it; a clip (a BVH)
shares one floor across its frames, at a low percentile of the frames' gaps, so a few frames of
a marker glitch do not sink it and airborne frames (hops) do not lift it.

Why (issue 27): the BVH reader used to put the floor at the clip's lowest point over every
joint and end site, and the three CMU clips of subject 131 then stood their flat foot's ankle
at 12.1, 16.1 and 8.1 cm (131_01 / 02 / 03; one toe marker dipped 6.5 cm under every other
frame of 131_02 for 47 frames), a spread the rules' 15 cm limit cuts through; the 3DHP and
Panoptic readers put the lowest joint at 0 cm, an ankle no standing person has. With this
floor the three clips' ankles stand at 8.1-8.9 cm, the generator's 8.5
(``benchmarks/reports/2026-12-07-ground-contact.md``).
"""

from __future__ import annotations

import numpy as np

from p2l3d_core.skeleton import JOINT_NAMES, J

# Height (metres, for a 1.75 m adult) of each joint centre above the floor when the body rests on
# the floor there: a flat foot's ankle (~8 cm, the malleoli), a kneeling knee (~6 cm, kneecap and
# tissue), a lying body's pelvis, back and skull (~9-10 cm), the limbs' radii at the shoulder,
# elbow and wrist. With the lowest joint put at 0 cm instead, a standing person's ankles stood
# 7-10 cm lower than real ones, so a foot was never lifted by the rules' 22 cm in a walk.
FLOOR_CLEARANCE: dict[str, float] = {
    "pelvis": 0.10, "r_hip": 0.09, "l_hip": 0.09, "r_knee": 0.06, "l_knee": 0.06,
    "r_ankle": 0.08, "l_ankle": 0.08, "spine": 0.10, "thorax": 0.10, "neck": 0.06,
    "head": 0.09, "l_shoulder": 0.07, "r_shoulder": 0.07, "l_elbow": 0.04, "r_elbow": 0.04,
    "l_wrist": 0.03, "r_wrist": 0.03,
}
CLEARANCE = np.array([FLOOR_CLEARANCE[name] for name in JOINT_NAMES])
NOMINAL_THIGH = 0.44
"""The thigh (hip to knee, m) of the 1.75 m adult :data:`FLOOR_CLEARANCE` is for (the
generator's nominal thigh: its bodies' clearance scales by their thigh over this)."""
CLIP_PERCENTILE = 5.0
"""The percentile of a clip's per-frame floor gaps its floor is put at."""


def body_size(joints: np.ndarray) -> float:
    """A body's size against the nominal adult: its median thigh length (over the frames and
    both sides of ``(..., 17, 3)`` joints) over :data:`NOMINAL_THIGH`; 1 where no thigh is
    seen."""
    thighs = np.concatenate([
        np.linalg.norm(joints[..., J[f"{s}_knee"], :] - joints[..., J[f"{s}_hip"], :], axis=-1)
        .ravel() for s in ("l", "r")])
    thighs = thighs[np.isfinite(thighs)]
    return float(np.median(thighs) / NOMINAL_THIGH) if len(thighs) else 1.0


def floor_gaps(joints: np.ndarray, clearance: np.ndarray) -> np.ndarray:
    """Each pose's height above the floor at ``z = 0``: ``(..., 17, 3)`` -> ``(...)``, the lowest
    joint's height above its clearance (unseen joints, NaN, ignored; NaN for a pose with none)."""
    gaps = joints[..., 2] - clearance
    seen = np.isfinite(gaps)
    lowest = np.where(seen, gaps, np.inf).min(-1)
    return np.where(seen.any(-1), lowest, np.nan)


def floor_height(joints: np.ndarray, percentile: float = 0.0) -> float:
    """The height of the floor under ``(F, 17, 3)`` poses that share one floor: where their
    bodies rest on it at each joint's clearance (scaled by the body's size). ``percentile`` 0:
    the lowest pose stands on it (a single capture); a clip uses :data:`CLIP_PERCENTILE`.
    Subtract it from the joints' ``z``."""
    gaps = floor_gaps(joints, CLEARANCE * body_size(joints))
    gaps = gaps[np.isfinite(gaps)]
    if not len(gaps):
        return 0.0
    return float(np.percentile(gaps, percentile))
