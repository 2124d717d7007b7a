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
from collections.abc import Callable
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
    ("in front", "behind"))
_HAND_HEIGHT = _per_side(
    ("How high is the {side} hand?",
     "Is the {side} hand above the head, above the shoulder, or below the shoulder?",
     "At what height is the {side} hand held?"),
    ("The {side} hand is raised above the head.",
     "The {side} hand is above the shoulder but below the top of the head.",
     "The {side} hand is below the shoulder."),
    ("above the head", "above the shoulder", "below the shoulder"))
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
    ("above the hip", "below the hip"))
_BENDS = ("straight", "slightly bent", "bent", "fully bent")
_BEND_SENTENCES = ("The {side} %s is straight.", "The {side} %s is slightly bent.",
                   "The {side} %s is bent.", "The {side} %s is fully bent.")
_JOINT_BEND = {
    joint: _per_side(
        (f"Is the {{side}} {joint} bent or straight?", f"How bent is the {{side}} {joint}?",
         f"Is the {{side}} {limb} straight or bent at the {joint}?"),
        tuple(t % joint for t in _BEND_SENTENCES), _BENDS)
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
     "The person is leaning backward."), ("forward", "upright", "backward"))
_FEET_DISTANCE = _whole(
    ("Are the feet together or apart?", "How far apart are the feet?",
     "Are the feet close together or spread apart?"),
    ("The feet are together.", "The feet are apart.", "The feet are far apart."),
    ("together", "apart", "far apart"))
_HANDS_DISTANCE = _whole(
    ("Are the hands together or apart?", "How far apart are the hands?",
     "Are the hands close together or held apart?"),
    ("The hands are together.", "The hands are apart.", "The hands are far apart."),
    ("together", "apart", "far apart"))
_GROUND_CONTACT = _whole(
    ("Which foot is on the ground?", "Which foot touches the ground?",
     "Which of the feet is in contact with the ground?"),
    ("Both feet are on the ground.", "Only the left foot is on the ground.",
     "Only the right foot is on the ground.", "Neither foot is on the ground."),
    ("both", "left", "right", "neither"))
_FACING = _whole(
    ("Which way is the person facing relative to the camera?",
     "Is the person facing the camera, facing away from it, or turned sideways?",
     "How is the person turned with respect to the camera?"),
    ("The person is facing the camera.", "The person is facing away from the camera.",
     "The person has their left side turned towards the camera.",
     "The person has their right side turned towards the camera."),
    ("towards", "away", "left side", "right side"))
_ACTION_QUESTIONS = ("What is the person doing?", "What action is the person performing?",
                     "What activity does this pose show?")
# ground contact: (left on/off, right on/off) -> answer index
_CONTACT_ANSWER = {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3}


@dataclass(frozen=True)
class Family:
    """A question family, registered once (:data:`REGISTRY`): its candidate lists (every
    question paraphrase with each answer and sentence, one list a side or joint) and ``pick``,
    the candidates a pose's posecodes (and action) make askable."""

    name: str
    needs_depth: bool
    tables: tuple[list[Candidate], ...]
    pick: Callable[[dict[str, int], str], list[Candidate]]

    @property
    def answers(self) -> tuple[str, ...]:
        """The closed vocabulary, in the order of the posecode categories it comes from."""
        return tuple(dict.fromkeys(a for table in self.tables for _, a, _ in table))


def _each_side(name: str, depth: bool, table: dict[str, list[Candidate]], code: str) -> Family:
    """A family asked about each side whose posecode ``l_<code>`` / ``r_<code>`` is known."""
    return Family(name, depth, (table["l"], table["r"]),
                  lambda c, _: [table[s][c[f"{s}_{code}"]] for s in _SIDE if c[f"{s}_{code}"] >= 0])


def _once(name: str, depth: bool, table: list[Candidate], code: str) -> Family:
    """A family asked once when its posecode ``code`` is known."""
    return Family(name, depth, (table,), lambda c, _: [table[c[code]]] if c[code] >= 0 else [])


def _bends(c: dict[str, int], _: str) -> list[Candidate]:
    return [_JOINT_BEND[j][s][c[f"{s}_{j}"]] for j in ("elbow", "knee") for s in _SIDE
            if c[f"{s}_{j}"] >= 0]


def _contact(c: dict[str, int], _: str) -> list[Candidate]:
    lg, rg = c["l_foot_ground"], c["r_foot_ground"]
    return [_GROUND_CONTACT[_CONTACT_ANSWER[lg, rg]]] if lg >= 0 and rg >= 0 else []


_ACTIONS: list[Candidate] = [(_ACTION_QUESTIONS, a, f"The person is {a}.") for a in ACTION_ANSWERS]


def _action(_: dict[str, int], action: str) -> list[Candidate]:
    text = action_text(action)
    return [(_ACTION_QUESTIONS, text.answer, f"The person is {text.answer}.")] if text.known else []


REGISTRY: tuple[Family, ...] = (
    _each_side("hand_front_back", True, _HAND_FRONT_BACK, "hand_depth"),
    _once("foot_forward", True, _FOOT_FORWARD, "foot_forward"),
    _once("hand_forward", True, _HAND_FORWARD, "hand_forward"),
    _once("torso_lean", True, _TORSO_LEAN, "lean_fb"),
    _each_side("hand_height", False, _HAND_HEIGHT, "hand_height"),
    Family("joint_bend", False, tuple(_JOINT_BEND[j][s] for j in ("elbow", "knee") for s in _SIDE),
           _bends),
    _once("feet_distance", False, _FEET_DISTANCE, "feet_distance"),
    _once("hands_distance", False, _HANDS_DISTANCE, "hands_distance"),
    Family("ground_contact", False, (_GROUND_CONTACT,), _contact),
    _once("facing", False, _FACING, "facing"),
    _each_side("hand_side", False, _HAND_SIDE, "hand_side"),
    _each_side("knee_height", False, _KNEE_HEIGHT, "knee_height"),
    Family("action", False, (_ACTIONS,), _action),
)
"""Every question family, in canonical order. A family is added here and nowhere else: the
answer vocabulary, the depth tag, the question bank and the answer sentences follow from it."""

FAMILY_ANSWERS: dict[str, tuple[str, ...]] = {f.name: f.answers for f in REGISTRY}
"""Answer vocabulary per family, in the order of the posecode categories they come from.
The action family's vocabulary is the known action answers; unknown labels are not asked."""
FAMILY_NEEDS_DEPTH: dict[str, bool] = {f.name: f.needs_depth for f in REGISTRY}
DEPTH_FAMILIES = frozenset(f.name for f in REGISTRY if f.needs_depth)
FAMILIES: tuple[str, ...] = tuple(FAMILY_ANSWERS)


def _candidates(c: dict[str, int], action: str) -> list[tuple[str, list[Candidate]]]:
    """Askable candidates of one pose, grouped by family, canonical order."""
    return [(f.name, found) for f in REGISTRY if (found := f.pick(c, action))]


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
    """Every family's question paraphrases (each side or joint), in registry order."""
    return tuple(dict.fromkeys((f.name, q) for f in REGISTRY for table in f.tables
                               for q in table[0][0]))


QUESTION_BANK: tuple[tuple[str, str], ...] = _bank()
"""``(family, question)`` for every question the families ask, all paraphrases. It depends on
no pose, so asking it of an unlabelled pose leaks nothing: the student is distilled on the
teacher's answers to it where no text exists."""


def _sentences() -> dict[str, dict[str, str]]:
    """question -> answer -> the answer as a full sentence, for every question of the bank."""
    out: dict[str, dict[str, str]] = {}
    for family in REGISTRY:
        for table in family.tables:
            for questions, answer, sentence in table:
                for q in questions:
                    out.setdefault(q, {})[answer] = sentence
    return out


SENTENCES: dict[str, dict[str, str]] = _sentences()
"""Each bank question's answers as sentences ("The left knee is bent."): what a user reads."""
