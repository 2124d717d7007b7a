"""Pictures of what the model saw and said: each person's skeleton, box and caption drawn over
the photo or video frame. People would rather look at these than read coordinates.

Colours follow the skeleton images the model reads (``render.py``): the person's left side
warm, right side cool, so a left/right mix-up by the estimator is visible at a glance.
"""

from __future__ import annotations

import textwrap
import unicodedata

import cv2
import numpy as np

from p2l3d_core.inference.keypoint_formats import MIN_CONFIDENCE

# COCO-17 limbs (a, b) and their BGR colour: left warm, right cool, head and torso grey.
_LEFT, _RIGHT, _MID = (0, 140, 255), (255, 160, 0), (200, 200, 200)
LIMBS: tuple[tuple[int, int, tuple[int, int, int]], ...] = (
    (5, 7, _LEFT), (7, 9, _LEFT), (11, 13, _LEFT), (13, 15, _LEFT), (5, 11, _LEFT),
    (6, 8, _RIGHT), (8, 10, _RIGHT), (12, 14, _RIGHT), (14, 16, _RIGHT), (6, 12, _RIGHT),
    (5, 6, _MID), (11, 12, _MID), (0, 1, _MID), (0, 2, _MID), (1, 3, _MID), (2, 4, _MID),
)
_PALETTE = ((80, 220, 80), (80, 200, 255), (255, 120, 200), (255, 255, 90), (120, 120, 255),
            (200, 255, 200))


def _ascii(text: str) -> str:
    """OpenCV's fonts draw ASCII only: accents dropped ("é" -> "e"), anything else as "?"."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c if c.isascii() else "?" for c in plain)


def _text_block(image: np.ndarray, lines: list[str], x: int, y: int, scale: float,
                colour: tuple[int, int, int]) -> None:
    """``lines`` on a dark band, the band's top-left at ``(x, y)``, kept inside the image."""
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(scale * 2))
    lines = [_ascii(t) for t in lines]
    sizes = [cv2.getTextSize(t, font, scale, thick)[0] for t in lines]
    line_h = max((h for _, h in sizes), default=0) + int(8 * scale) + 2
    width = max((w for w, _ in sizes), default=0) + 8
    height = line_h * len(lines) + 4
    x = int(min(max(0, x), max(0, image.shape[1] - width)))
    y = int(min(max(0, y), max(0, image.shape[0] - height)))
    band = image[y:y + height, x:x + width]
    band[:] = (band * 0.35).astype(np.uint8)
    for k, text in enumerate(lines):
        cv2.putText(image, text, (x + 4, y + (k + 1) * line_h - 2), font, scale, colour, thick,
                    cv2.LINE_AA)


def draw_people(image: np.ndarray, people: list, answers: bool = True) -> np.ndarray:
    """A copy of the BGR ``image`` with every person (``Person`` or its dict) drawn: skeleton,
    box, track id, the caption wrapped to the box and, with ``answers``, each answer."""
    out = image.copy()
    scale = max(0.4, min(out.shape[:2]) / 1100)
    thick = max(2, round(min(out.shape[:2]) / 300))
    for k, person in enumerate(people):
        p = person if isinstance(person, dict) else person.to_dict()
        colour = _PALETTE[(p.get("track") if p.get("track") is not None else k) % len(_PALETTE)]
        kp = np.asarray(p["keypoints"], dtype=np.float64)
        for a, b, limb in LIMBS:
            if kp[a, 2] >= MIN_CONFIDENCE and kp[b, 2] >= MIN_CONFIDENCE:
                cv2.line(out, (int(kp[a, 0]), int(kp[a, 1])), (int(kp[b, 0]), int(kp[b, 1])),
                         limb, thick, cv2.LINE_AA)
        for x, y, c in kp:
            if c >= MIN_CONFIDENCE:
                cv2.circle(out, (int(x), int(y)), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
        x0, y0, x1, y1 = (int(v) for v in p["bbox"])
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, max(1, thick // 2))
        label = f"#{p['track']}" if p.get("track") is not None else f"person {k + 1}"
        width = max(24, int((x1 - x0) / (11 * scale)))
        lines = [label] + textwrap.wrap(p.get("caption", ""), width)[:4]
        if answers:
            lines += [f"{a['question']} {a['answer']}" for a in p.get("answers", [])][:4]
        _text_block(out, lines, x0, y1 + 4, scale, colour)
    return out
