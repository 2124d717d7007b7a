"""Captions: several true, varied sentences per pose, built from its posecodes.

A pose's known posecodes become *facts* (a key, a few synonymous clauses, a salience); a left
and a right code with the same category merge into one "both ..." fact. A caption is a sentence
for the action plus a selection of facts in some order, with clauses sometimes joined in pairs.
Every clause restates exactly one posecode category, and a code that is unknown (missing joint,
dead band) produces no clause, so captions only say what was measured.

Randomness: with a ``numpy`` Generator, the selection, order, synonyms, joins and action
placement vary, and the same seed gives the same captions. With ``rng=None`` (deterministic
mode) caption ``j`` is a fixed *canonical variant*: the most salient facts
(:data:`DETERMINISTIC_MAX_FACTS`) in canonical order rotated by ``j``, synonym ``j`` of every
clause, action sentence ``j``; caption 0 is the canonical caption (one sentence per fact).
"""

from __future__ import annotations

import random

import numpy as np

from p2l3d_core.language.actions import action_sentences, action_text
from p2l3d_core.language.posecodes import BODY_CODE_CATEGORIES, SIDE_CODE_CATEGORIES, Posecodes

Fact = tuple[str, tuple[str, ...], int]
"""(key, synonymous clauses, salience). Salience 1 = ordinary (arms down, feet on the ground),
2 = worth saying, 3 = distinctive; it weights the random selection."""

MIN_FACTS = 3
MAX_FACTS = 6
"""Facts per random caption: PoseScript-like captions carry a handful of relations; more reads
like a list, fewer leaves the caption uninformative."""

DETERMINISTIC_MAX_FACTS = 8
"""Facts in a deterministic caption (the most salient, ties in canonical order)."""

JOIN_PROBABILITY = 0.4
"""Chance that two consecutive clauses share one sentence (varies the sentence rhythm)."""

ACTION_FIRST_PROBABILITY = 0.7
"""Chance the action sentence opens a random caption rather than closing it."""

CONNECTORS = (" and ", ", and ", ", while ", "; ")
SIDE_WORDS = {"l": ("left", "right"), "r": ("right", "left")}

# base -> category -> (singular clauses with {side}/{other}, "both" clauses, salience) or None
# (None: the category is the unremarkable default and is not stated).
_SIDE_TEMPLATES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...], int] | None]] = {
    "elbow": {
        "straight": (("the {side} arm is straight", "the {side} elbow is straight",
                      "the {side} arm is fully extended"),
                     ("both arms are straight", "both elbows are straight",
                      "both arms are fully extended"), 1),
        "slightly_bent": (("the {side} elbow is slightly bent",
                           "the {side} arm is a little bent at the elbow"),
                          ("both elbows are slightly bent",
                           "both arms are a little bent at the elbow"), 2),
        "bent": (("the {side} elbow is bent", "the {side} arm is bent at the elbow",
                  "the {side} elbow is flexed"),
                 ("both elbows are bent", "both arms are bent at the elbow",
                  "both elbows are flexed"), 3),
        "fully_bent": (("the {side} elbow is fully bent",
                        "the {side} arm is folded tightly at the elbow"),
                       ("both elbows are fully bent", "both arms are folded tightly at the elbow"),
                       3),
    },
    "knee": {
        "straight": (("the {side} leg is straight", "the {side} knee is straight",
                      "the {side} leg is fully extended"),
                     ("both legs are straight", "both knees are straight",
                      "both legs are fully extended"), 1),
        "slightly_bent": (("the {side} knee is slightly bent",
                           "the {side} leg is a little bent at the knee"),
                          ("both knees are slightly bent",
                           "both legs are a little bent at the knee"), 2),
        "bent": (("the {side} knee is bent", "the {side} leg is bent at the knee",
                  "the {side} knee is flexed"),
                 ("both knees are bent", "both legs are bent at the knee",
                  "both knees are flexed"), 3),
        "fully_bent": (("the {side} knee is fully bent",
                        "the {side} leg is folded tightly at the knee"),
                       ("both knees are fully bent", "both legs are folded tightly at the knee"),
                       3),
    },
    "hand_height": {
        "above_head": (("the {side} hand is raised above the head",
                        "the {side} hand is higher than the head",
                        "the {side} hand is up above the head"),
                       ("both hands are raised above the head",
                        "both hands are higher than the head",
                        "both hands are up above the head"), 3),
        "above_shoulder": (("the {side} hand is above shoulder level",
                            "the {side} hand is raised higher than the shoulder"),
                           ("both hands are above shoulder level",
                            "both hands are raised higher than the shoulders"), 3),
        "below_shoulder": (("the {side} hand is below the shoulder",
                            "the {side} hand is lower than the shoulder"),
                           ("both hands are below shoulder level",
                            "both hands are lower than the shoulders"), 1),
    },
    "hand_depth": {
        "in_front": (("the {side} hand is in front of the torso",
                      "the {side} hand is held in front of the body"),
                     ("both hands are in front of the torso",
                      "both hands are held in front of the body"), 3),
        "behind": (("the {side} hand is behind the torso", "the {side} hand is behind the back"),
                   ("both hands are behind the torso", "both hands are behind the back"), 3),
    },
    "hand_side": {
        "own_side": None,
        "crossed": (("the {side} hand reaches across to the {other} side of the body",
                     "the {side} hand crosses the midline of the body"),
                    ("both hands cross over to the opposite side of the body",
                     "each hand reaches across the midline of the body"), 3),
    },
    "hand_head": {
        "near": (("the {side} hand is near the head", "the {side} hand is close to the head"),
                 ("both hands are near the head", "both hands are close to the head"), 3),
        "far": None,
    },
    "upper_arm": {
        "down": (("the {side} upper arm hangs down", "the {side} upper arm points down"),
                 ("both upper arms hang down", "both upper arms point down"), 1),
        "horizontal": (("the {side} upper arm is horizontal",
                        "the {side} upper arm is held out horizontally"),
                       ("both upper arms are horizontal",
                        "both upper arms are held out horizontally"), 3),
        "up": (("the {side} upper arm points up", "the {side} upper arm is raised vertically"),
               ("both upper arms point up", "both upper arms are raised vertically"), 3),
    },
    "thigh": {
        "down": (("the {side} thigh is vertical", "the {side} thigh points down"),
                 ("both thighs are vertical", "both thighs point down"), 1),
        "horizontal": (("the {side} thigh is horizontal",
                        "the {side} thigh is parallel to the ground"),
                       ("both thighs are horizontal", "both thighs are parallel to the ground"), 3),
        "up": (("the {side} thigh points upwards", "the {side} thigh is raised vertically"),
               ("both thighs point upwards", "both thighs are raised vertically"), 3),
    },
    "foot_ground": {
        "on_ground": (("the {side} foot is on the ground", "the {side} foot rests on the ground"),
                      ("both feet are on the ground", "both feet are planted on the ground"), 1),
        "off_ground": (("the {side} foot is off the ground",
                        "the {side} foot is lifted off the ground"),
                       ("both feet are off the ground", "neither foot touches the ground"), 3),
    },
    "knee_ground": {
        "on_ground": (("the {side} knee is on the ground", "the {side} knee rests on the ground"),
                      ("both knees are on the ground", "both knees rest on the ground"), 3),
        "off_ground": None,
    },
    "knee_height": {
        "above_hip": (("the {side} knee is raised above hip level",
                       "the {side} knee is higher than the hip"),
                      ("both knees are above hip level", "both knees are higher than the hips"), 3),
        "below_hip": (("the {side} knee is below the hip", "the {side} knee is lower than the hip"),
                      ("both knees are below the hips", "both knees are lower than the hips"), 1),
    },
}

# code -> category -> (clauses, salience) or None.
_BODY_TEMPLATES: dict[str, dict[str, tuple[tuple[str, ...], int] | None]] = {
    "hands_distance": {
        "together": (("the hands are together", "the hands are close to each other"), 3),
        "apart": (("the hands are apart", "the hands are held apart"), 1),
        "far_apart": (("the hands are far apart", "the arms are spread wide"), 3),
    },
    "feet_distance": {
        "together": (("the feet are together", "the feet are close together"), 2),
        "apart": (("the feet are apart", "the feet are set apart"), 1),
        "far_apart": (("the feet are far apart", "the feet are wide apart"), 3),
    },
    "foot_forward": {
        "left": (("the left foot is in front of the right foot",
                  "the left foot is further forward than the right",
                  "the left foot is ahead of the right foot"), 3),
        "right": (("the right foot is in front of the left foot",
                   "the right foot is further forward than the left",
                   "the right foot is ahead of the left foot"), 3),
    },
    "hand_forward": {
        "left": (("the left hand is further forward than the right hand",
                  "the left hand is ahead of the right hand"), 2),
        "right": (("the right hand is further forward than the left hand",
                   "the right hand is ahead of the left hand"), 2),
    },
    "torso": {
        "upright": (("the torso is upright", "the upper body is held upright"), 1),
        "leaning": (("the torso is tilted", "the upper body is inclined"), 2),
        "horizontal": (("the torso is horizontal", "the upper body is parallel to the ground"), 3),
        "upside_down": (("the person is upside down", "the torso points downwards"), 3),
    },
    "lean_fb": {
        "forward": (("the person leans forward", "the person is leaning forward",
                     "the upper body leans forward"), 3),
        "upright": None,
        "backward": (("the person leans back", "the person is leaning backward",
                      "the upper body leans back"), 3),
    },
    "lean_lr": {
        "left": (("the person leans to the left", "the upper body tilts to the left"), 3),
        "upright": None,
        "right": (("the person leans to the right", "the upper body tilts to the right"), 3),
    },
    "facing": {
        "towards": (("the person faces the camera", "the person is facing the camera",
                     "the person is turned towards the camera"), 2),
        "away": (("the person faces away from the camera",
                  "the person has their back to the camera"), 2),
        "left_side": (("the person shows their left side to the camera",
                       "the left side of the body is turned towards the camera"), 2),
        "right_side": (("the person shows their right side to the camera",
                        "the right side of the body is turned towards the camera"), 2),
    },
}


def _side_table() -> dict[str, list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...],
                                          int] | None]]:
    """base -> per category index: (left clauses, right clauses, both clauses, salience)."""
    table = {}
    for base, categories in SIDE_CODE_CATEGORIES.items():
        rows = []
        for category in categories:
            entry = _SIDE_TEMPLATES[base][category]
            if entry is None:
                rows.append(None)
                continue
            single, both, salience = entry
            per_side = [tuple(t.format(side=SIDE_WORDS[s][0], other=SIDE_WORDS[s][1])
                              for t in single) for s in ("l", "r")]
            rows.append((per_side[0], per_side[1], both, salience))
        table[base] = rows
    return table


_SIDE_FACTS = _side_table()
_BODY_FACTS = {code: [_BODY_TEMPLATES[code][c] for c in cats]
               for code, cats in BODY_CODE_CATEGORIES.items()}


def pose_facts(codes: Posecodes, i: int) -> list[Fact]:
    """The facts of pose ``i`` in canonical order, with left/right merged into "both" facts."""
    c = codes.pose(i)
    facts: list[Fact] = []
    for base, rows in _SIDE_FACTS.items():
        lv, rv = c["l_" + base], c["r_" + base]
        if lv == rv and lv >= 0:
            row = rows[lv]
            if row is not None:
                facts.append((base, row[2], row[3]))
            continue
        for slot, side, value in ((0, "l", lv), (1, "r", rv)):
            row = rows[value] if value >= 0 else None
            if row is not None:
                facts.append((f"{side}_{base}", row[slot], row[3]))
    for code, rows in _BODY_FACTS.items():
        value = c[code]
        row = rows[value] if value >= 0 else None
        if row is not None:
            facts.append((code, row[0], row[1]))
    return facts


def _sentence(clause: str) -> str:
    return clause[0].upper() + clause[1:] + "."


def _random_caption(facts: list[Fact], actions: tuple[str, ...], rnd: random.Random) -> str:
    k = min(len(facts), rnd.randint(MIN_FACTS, MAX_FACTS))
    # Weighted sampling without replacement (Efraimidis-Spirakis): key u^(1/w), largest first.
    chosen = sorted(facts, key=lambda f: rnd.random() ** (1.0 / f[2]), reverse=True)[:k]
    clauses = [rnd.choice(f[1]) for f in chosen]
    sentences = []
    j = 0
    while j < len(clauses):
        if j + 1 < len(clauses) and rnd.random() < JOIN_PROBABILITY:
            sentences.append(_sentence(clauses[j] + rnd.choice(CONNECTORS) + clauses[j + 1]))
            j += 2
        else:
            sentences.append(_sentence(clauses[j]))
            j += 1
    if actions:
        action = rnd.choice(actions)
        if rnd.random() < ACTION_FIRST_PROBABILITY:
            sentences.insert(0, action)
        else:
            sentences.append(action)
    return " ".join(sentences)


def _canonical_caption(facts: list[Fact], actions: tuple[str, ...], j: int) -> str:
    ranked = sorted(range(len(facts)), key=lambda n: -facts[n][2])[:DETERMINISTIC_MAX_FACTS]
    kept = [facts[n] for n in sorted(ranked)]
    if kept:
        shift = j % len(kept)
        kept = kept[shift:] + kept[:shift]
    clauses = [f[1][j % len(f[1])] for f in kept]
    if j == 0:
        sentences = [_sentence(c) for c in clauses]
    else:
        sentences = [_sentence(" and ".join(clauses[n:n + 2])) for n in range(0, len(clauses), 2)]
    if actions:
        sentences.insert(0, actions[j % len(actions)])
    return " ".join(sentences)


def python_random(rng: np.random.Generator) -> random.Random:
    """A ``random.Random`` seeded from ``rng``: per-pose text generation draws dozens of small
    choices, which are ~10x cheaper from the standard library than from numpy."""
    return random.Random(int(rng.integers(1 << 63)))


def describe(codes: Posecodes, i: int, action: str, rng: np.random.Generator | None,
             num_captions: int = 3) -> list[str]:
    """``num_captions`` captions of pose ``i`` (see the module docstring for the modes).

    Returns an empty list when nothing is known about the pose and the action is empty.
    """
    facts = pose_facts(codes, i)
    actions = action_sentences(action_text(action))
    if not facts and not actions:
        return []
    if rng is None:
        return [_canonical_caption(facts, actions, j) for j in range(num_captions)]
    rnd = python_random(rng)
    return [_random_caption(facts, actions, rnd) for _ in range(num_captions)]
