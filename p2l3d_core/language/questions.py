"""Question/answer pairs about a pose, answered from its 3D posecodes.

Each *family* asks one kind of question and answers from a fixed vocabulary
(:data:`FAMILY_ANSWERS`), so an answer can be scored as a class as well as a sentence. A question
is only asked when its answer is defined: the posecodes it reads are known and outside their
dead bands, so no answer is a guess.

``needs_depth`` rule: a family needs depth when its answer is a relation along the body's
front/back axis (hand in front of / behind the torso, which foot or hand is further forward,
leaning forward or backward). For the usual camera, placed in front of or beside the person,
that axis runs largely along the camera's line of sight, which a 2D skeleton flattens away:
these are the questions only 3D can settle. Up/down relations lie in the image plane (cameras
are roughly level); left/right relations, joint bends, distances, ground contact and facing have
2D cues (labelled left/right joints, foreshortening, image height). The tag is fixed per family,
not per view, so that splits and scores are comparable across poses.

Ordering: candidate questions are taken round-robin over families (random family order and
paraphrases with an rng, canonical order and the first paraphrase with ``rng=None``), so a
``max_questions`` cut keeps as many families as possible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from p2l3d_core.language.actions import ACTION_ANSWERS, action_text
from p2l3d_core.language.captions import python_random
from p2l3d_core.language.posecodes import Posecodes


@dataclass(frozen=True)
class QA:
    """One question about a pose with its short answer (from ``FAMILY_ANSWERS[family]``) and
    the same answer as a full sentence."""

    family: str
    question: str
    answer: str
    sentence: str
    needs_depth: bool


FAMILY_ANSWERS: dict[str, tuple[str, ...]] = {
    "hand_front_back": ("in front", "behind"),
    "foot_forward": ("left", "right"),
    "hand_forward": ("left", "right"),
    "torso_lean": ("forward", "upright", "backward"),
    "hand_height": ("above the head", "above the shoulder", "below the shoulder"),
    "joint_bend": ("straight", "slightly bent", "bent", "fully bent"),
    "feet_distance": ("together", "apart", "far apart"),
    "hands_distance": ("together", "apart", "far apart"),
    "ground_contact": ("both", "left", "right", "neither"),
    "facing": ("towards", "away", "left side", "right side"),
    "hand_side": ("left", "right"),
    "knee_height": ("above the hip", "below the hip"),
    "action": ACTION_ANSWERS,
}
"""Answer vocabulary per family, in the order of the posecode categories they come from.
The action family's vocabulary is the known action answers; unknown labels are not asked."""

DEPTH_FAMILIES = frozenset({"hand_front_back", "foot_forward", "hand_forward", "torso_lean"})
FAMILY_NEEDS_DEPTH: dict[str, bool] = {f: f in DEPTH_FAMILIES for f in FAMILY_ANSWERS}
FAMILIES: tuple[str, ...] = tuple(FAMILY_ANSWERS)

# A candidate: (question paraphrases, answer, sentence). Tables are filled once at import so
# the per-pose loop only looks them up.
Candidate = tuple[tuple[str, ...], str, str]
_SIDE = {"l": "left", "r": "right"}


def _per_side(questions: tuple[str, ...], sentences: tuple[str, ...], answers: tuple[str, ...]
              ) -> dict[str, list[Candidate]]:
    """side -> per category: question paraphrases and sentence with the side filled in."""
    return {s: [(tuple(q.format(side=w) for q in questions), a, t.format(side=w))
                for a, t in zip(answers, sentences)] for s, w in _SIDE.items()}


_HAND_FRONT_BACK = _per_side(
    ("Is the {side} hand in front of or behind the torso?",
     "Is the {side} hand held in front of the body or behind it?",
     "Where is the {side} hand relative to the torso, in front or behind?"),
    ("The {side} hand is in front of the torso.", "The {side} hand is behind the torso."),
    FAMILY_ANSWERS["hand_front_back"])
_HAND_HEIGHT = _per_side(
    ("How high is the {side} hand?",
     "Is the {side} hand above the head, above the shoulder, or below the shoulder?",
     "At what height is the {side} hand held?"),
    ("The {side} hand is raised above the head.",
     "The {side} hand is above the shoulder but below the top of the head.",
     "The {side} hand is below the shoulder."),
    FAMILY_ANSWERS["hand_height"])
_HAND_SIDE_QUESTIONS = ("On which side of the body is the {side} hand?",
                        "Is the {side} hand on the left or the right side of the body?",
                        "Which side of the body is the {side} hand on?")
# side -> per hand_side category (own side, crossed): (questions, answer, sentence)
_HAND_SIDE = {
    s: [(tuple(q.format(side=w) for q in _HAND_SIDE_QUESTIONS), w,
         f"The {w} hand is on the {w} side of the body."),
        (tuple(q.format(side=w) for q in _HAND_SIDE_QUESTIONS), o,
         f"The {w} hand is on the {o} side of the body, across the midline.")]
    for s, w, o in (("l", "left", "right"), ("r", "right", "left"))
}
_KNEE_HEIGHT = _per_side(
    ("Is the {side} knee above or below the hip?",
     "Is the {side} knee higher or lower than the hip?",
     "Where is the {side} knee relative to hip height?"),
    ("The {side} knee is raised above the hip.", "The {side} knee is below the hip."),
    FAMILY_ANSWERS["knee_height"])
_BEND_SENTENCES = ("The {side} %s is straight.", "The {side} %s is slightly bent.",
                   "The {side} %s is bent.", "The {side} %s is fully bent.")
_JOINT_BEND = {
    joint: _per_side(
        (f"Is the {{side}} {joint} bent or straight?", f"How bent is the {{side}} {joint}?",
         f"Is the {{side}} {limb} straight or bent at the {joint}?"),
        tuple(t % joint for t in _BEND_SENTENCES), FAMILY_ANSWERS["joint_bend"])
    for joint, limb in (("elbow", "arm"), ("knee", "leg"))
}


def _whole(questions: tuple[str, ...], sentences: tuple[str, ...], answers: tuple[str, ...]
           ) -> list[Candidate]:
    return [(questions, a, t) for a, t in zip(answers, sentences)]


_PLURAL = {"foot": "feet", "hand": "hands"}


def _which_forward(part: str) -> list[Candidate]:
    return _whole(
        (f"Which {part} is further forward?", f"Which {part} is in front, the left or the right?",
         f"Which of the {_PLURAL[part]} is further ahead?"),
        (f"The left {part} is further forward than the right {part}.",
         f"The right {part} is further forward than the left {part}."), ("left", "right"))


_FOOT_FORWARD = _which_forward("foot")
_HAND_FORWARD = _which_forward("hand")
_TORSO_LEAN = _whole(
    ("Is the person leaning forward or backward?",
     "Does the upper body lean forward, lean back, or stay upright?",
     "Which way is the torso leaning, forward or backward?"),
    ("The person is leaning forward.",
     "The upper body is upright, leaning neither forward nor backward.",
     "The person is leaning backward."), FAMILY_ANSWERS["torso_lean"])
_FEET_DISTANCE = _whole(
    ("Are the feet together or apart?", "How far apart are the feet?",
     "Are the feet close together or spread apart?"),
    ("The feet are together.", "The feet are apart.", "The feet are far apart."),
    FAMILY_ANSWERS["feet_distance"])
_HANDS_DISTANCE = _whole(
    ("Are the hands together or apart?", "How far apart are the hands?",
     "Are the hands close together or held apart?"),
    ("The hands are together.", "The hands are apart.", "The hands are far apart."),
    FAMILY_ANSWERS["hands_distance"])
_GROUND_CONTACT = _whole(
    ("Which foot is on the ground?", "Which foot touches the ground?",
     "Which of the feet is in contact with the ground?"),
    ("Both feet are on the ground.", "Only the left foot is on the ground.",
     "Only the right foot is on the ground.", "Neither foot is on the ground."),
    FAMILY_ANSWERS["ground_contact"])
_FACING = _whole(
    ("Which way is the person facing relative to the camera?",
     "Is the person facing the camera, facing away from it, or turned sideways?",
     "How is the person turned with respect to the camera?"),
    ("The person is facing the camera.", "The person is facing away from the camera.",
     "The person has their left side turned towards the camera.",
     "The person has their right side turned towards the camera."), FAMILY_ANSWERS["facing"])
_ACTION_QUESTIONS = ("What is the person doing?", "What action is the person performing?",
                     "What activity does this pose show?")
# ground contact: (left on/off, right on/off) -> answer index
_CONTACT_ANSWER = {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3}


def _candidates(c: dict[str, int], action: str) -> list[tuple[str, list[Candidate]]]:
    """Askable candidates of one pose, grouped by family, canonical order."""
    out: list[tuple[str, list[Candidate]]] = []

    def per_side(family: str, table: dict[str, list[Candidate]], code: str) -> None:
        found = [table[s][c[f"{s}_{code}"]] for s in ("l", "r") if c[f"{s}_{code}"] >= 0]
        if found:
            out.append((family, found))

    def whole(family: str, table: list[Candidate], value: int) -> None:
        if value >= 0:
            out.append((family, [table[value]]))

    per_side("hand_front_back", _HAND_FRONT_BACK, "hand_depth")
    whole("foot_forward", _FOOT_FORWARD, c["foot_forward"])
    whole("hand_forward", _HAND_FORWARD, c["hand_forward"])
    whole("torso_lean", _TORSO_LEAN, c["lean_fb"])
    per_side("hand_height", _HAND_HEIGHT, "hand_height")
    bends = [_JOINT_BEND[j][s][c[f"{s}_{j}"]] for j in ("elbow", "knee") for s in ("l", "r")
             if c[f"{s}_{j}"] >= 0]
    if bends:
        out.append(("joint_bend", bends))
    whole("feet_distance", _FEET_DISTANCE, c["feet_distance"])
    whole("hands_distance", _HANDS_DISTANCE, c["hands_distance"])
    lg, rg = c["l_foot_ground"], c["r_foot_ground"]
    if lg >= 0 and rg >= 0:
        out.append(("ground_contact", [_GROUND_CONTACT[_CONTACT_ANSWER[lg, rg]]]))
    whole("facing", _FACING, c["facing"])
    per_side("hand_side", _HAND_SIDE, "hand_side")
    per_side("knee_height", _KNEE_HEIGHT, "knee_height")
    text = action_text(action)
    if text.known:
        out.append(("action", [(_ACTION_QUESTIONS, text.answer, f"The person is {text.answer}.")]))
    return out


def _round_robin(groups: list[list[Candidate]]) -> list[tuple[int, Candidate]]:
    order: list[tuple[int, Candidate]] = []
    depth = max((len(g) for g in groups), default=0)
    for level in range(depth):
        order += [(g, groups[g][level]) for g in range(len(groups)) if level < len(groups[g])]
    return order


def ask(codes: Posecodes, i: int, action: str, rng: np.random.Generator | None,
        max_questions: int | None = None) -> list[QA]:
    """Questions about pose ``i`` whose answers are defined (see the module docstring)."""
    grouped = _candidates(codes.pose(i), action)
    rnd: random.Random | None = None if rng is None else python_random(rng)
    if rnd is not None:
        rnd.shuffle(grouped)
        for _, group in grouped:
            rnd.shuffle(group)
    ordered = _round_robin([g for _, g in grouped])
    if max_questions is not None:
        ordered = ordered[:max_questions]
    out = []
    for g, (questions, answer, sentence) in ordered:
        family = grouped[g][0]
        question = questions[0] if rnd is None else rnd.choice(questions)
        out.append(QA(family, question, answer, sentence, FAMILY_NEEDS_DEPTH[family]))
    return out


def answer_table(codes: Posecodes, i: int, action: str) -> dict[str, str]:
    """Every askable question about pose ``i`` (all paraphrases) -> its answer. Rule-based
    methods (true 3D, lifted 3D) answer a given question with it; a question missing from the
    table has no defined answer for that pose."""
    table: dict[str, str] = {}
    for _, group in _candidates(codes.pose(i), action):
        for questions, answer, _ in group:
            table.update(dict.fromkeys(questions, answer))
    return table


def _bank() -> tuple[tuple[str, str], ...]:
    per_side = {"hand_front_back": _HAND_FRONT_BACK, "hand_height": _HAND_HEIGHT,
                "hand_side": _HAND_SIDE, "knee_height": _KNEE_HEIGHT,
                **{f"joint_bend/{j}": t for j, t in _JOINT_BEND.items()}}
    whole = {"foot_forward": _FOOT_FORWARD, "hand_forward": _HAND_FORWARD,
             "torso_lean": _TORSO_LEAN, "feet_distance": _FEET_DISTANCE,
             "hands_distance": _HANDS_DISTANCE, "ground_contact": _GROUND_CONTACT,
             "facing": _FACING}
    pairs = [(f.split("/")[0], q) for f, t in per_side.items() for s in _SIDE
             for q in t[s][0][0]]
    pairs += [(f, q) for f, t in whole.items() for q in t[0][0]]
    pairs += [("action", q) for q in _ACTION_QUESTIONS]
    return tuple(dict.fromkeys(pairs))


QUESTION_BANK: tuple[tuple[str, str], ...] = _bank()
"""``(family, question)`` for every question the families ask, all paraphrases. It depends on
no pose, so asking it of an unlabelled pose leaks nothing: the student is distilled on the
teacher's answers to it where no text exists."""


def _sentences() -> dict[str, dict[str, str]]:
    """question -> answer -> the answer as a full sentence, for every question of the bank."""
    per_side = [_HAND_FRONT_BACK, _HAND_HEIGHT, _HAND_SIDE, _KNEE_HEIGHT, *_JOINT_BEND.values()]
    whole = [_FOOT_FORWARD, _HAND_FORWARD, _TORSO_LEAN, _FEET_DISTANCE, _HANDS_DISTANCE,
             _GROUND_CONTACT, _FACING]
    candidates = [c for t in per_side for s in _SIDE for c in t[s]]
    candidates += [c for t in whole for c in t]
    candidates += [(_ACTION_QUESTIONS, a, f"The person is {a}.") for a in ACTION_ANSWERS]
    out: dict[str, dict[str, str]] = {}
    for questions, answer, sentence in candidates:
        for q in questions:
            out.setdefault(q, {})[answer] = sentence
    return out


SENTENCES: dict[str, dict[str, str]] = _sentences()
"""Each bank question's answers as sentences ("The left knee is bent."): what a user reads."""
