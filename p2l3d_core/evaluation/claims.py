"""Caption precision: what a caption claims about the body, checked against the true 3D.

BLEU and CIDEr reward wording: "the right foot is further forward than the right" scores well
against "the right foot is further forward than the left". Every clause a caption template
writes restates one posecode category (``language/captions.py``), so a generated caption can be
parsed back into the posecodes it claims and each claim checked by the same rules, measured on
the true 3D joints. Caption precision is the share of claims that are true.

Parsing is the exact inverse of the templates: the clause table (``language/grammar.py``) is
built by asking ``pose_facts`` for every category of every code, so a template edited there is
parsed here without a change. A caption splits into sentences (``.``), a sentence into
clauses at the connectors captions join clauses with (``and``, ``, and``, ``, while``, ``;``).
A clause that is no template's (a typo, a truncated sentence, or a self-contradiction such as
"the right foot is further forward than the right", which no template can write) is
*malformed* and counts as a false claim.

Action sentences ("The person is walking.") claim the action label, not a fact of the 3D body:
they are scored apart (``caption_action_precision``), as the VQA action family is reported apart
from the geometry families, so that neither hides the other.

Dead bands: a posecode in a dead band has no category (``posecodes.py``: nothing there is
clearly true). A claim naming one of the two categories the band separates is *not scored*:
the rules themselves cannot call it true or false (a knee at 150 degrees is neither clearly
"straight" nor clearly "slightly bent"), and calling it false would penalise a model for the
thresholds' margins. A claim naming a farther category (that 150-degree knee called "bent") is
clearly wrong and counts as false. A claim the rules cannot measure at all (a missing joint,
front/back relations of a lying body, facing without a camera) is not scored either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from p2l3d_core.language.actions import ActionText, action_sentences, action_text, known_labels
from p2l3d_core.language.grammar import clause_table, normalise
from p2l3d_core.language.posecodes import (
    ANKLE_OFF_GROUND,
    ANKLE_ON_GROUND,
    BEND_INTERVALS_DEG,
    CODE_CATEGORIES,
    DIRECTION_INTERVALS_DEG,
    FACING_INTERVALS_DEG,
    FEET_DISTANCE_INTERVALS,
    HAND_ABOVE_MARGIN,
    HAND_FAR_FROM_HEAD,
    HAND_NEAR_HEAD,
    HANDS_DISTANCE_INTERVALS,
    KNEE_OFF_GROUND,
    KNEE_ON_GROUND,
    LEAN_INTERVALS_DEG,
    SIDES,
    TORSO_INTERVALS_DEG,
    UNKNOWN,
    Posecodes,
    measure_posecodes,
)


@dataclass(frozen=True)
class Claim:
    """One clause of a caption: the posecode categories it asserts (two for a "both ..."
    clause), or the action phrase it names, or neither (malformed)."""

    text: str
    codes: tuple[tuple[str, int], ...] = ()
    action: str | None = None

    @property
    def malformed(self) -> bool:
        return not self.codes and self.action is None


_PROBE = "zzprobe"  # stands for the action phrase when the sentence templates are read


@lru_cache(maxsize=1)
def _action_patterns() -> tuple[re.Pattern, ...]:
    """The action-sentence templates (``action_sentences``) as patterns capturing the phrase:
    "the person is (...)", "someone is (...)", 'the action is "(...)"', ..."""
    texts = (action_sentences(ActionText(_PROBE + "ing", (_PROBE + "ing",), True))
             + action_sentences(ActionText(_PROBE, (_PROBE,), False)))
    forms = {re.escape(normalise(t).rstrip(".")).replace(_PROBE + "ing", "(.+)")
             .replace(_PROBE, "(.+)") for t in texts}
    return tuple(re.compile(f"^{f}$") for f in sorted(forms))


@lru_cache(maxsize=1)
def _phrase_answers() -> dict[str, frozenset[str]]:
    """Every known action phrase -> the answers of the labels that use it ("walking along" is
    both "walk" and "walking", answer "walking")."""
    out: dict[str, set[str]] = {}
    for label in known_labels():
        text = action_text(label)
        for phrase in text.phrases:
            out.setdefault(phrase, set()).add(text.answer)
    return {phrase: frozenset(answers) for phrase, answers in out.items()}


CONNECTORS = re.compile(r",? and |, while |; ")
"""What joins two clauses into one sentence (``captions.CONNECTORS``); no clause contains one."""


def _clause_claim(clause: str, actions: frozenset[str]) -> Claim:
    asserted = clause_table().get(clause)
    if asserted is not None:
        return Claim(clause, codes=asserted)
    for pattern in _action_patterns():
        found = pattern.match(clause)
        if found and (found[1] in _phrase_answers() or found[1] in actions):
            return Claim(clause, action=found[1])
    return Claim(clause)


def caption_claims(caption: str, actions: Iterable[str] = ()) -> list[Claim]:
    """The claims of one caption, in order: one per clause (sentences split at the full stops,
    then at the connectors). ``actions``: labels whose phrases are accepted in an action
    sentence besides the known ones (a real set's own labels, e.g. "PickUpBox" read as
    'the action is "pick up box"')."""
    phrases = frozenset(p for label in actions for p in action_text(label).phrases)
    claims = []
    for sentence in normalise(caption).split("."):
        sentence = sentence.strip()
        if not sentence:
            continue
        whole = _clause_claim(sentence, phrases)  # an action sentence may hold "and"
        if not whole.malformed:
            claims.append(whole)
            continue
        claims += [_clause_claim(c.strip(), phrases) for c in CONNECTORS.split(sentence)]
    return claims


# ---------------------------------------------------------------------------------------------
# The truth of a claim, from the posecodes of the true 3D.

_INTERVALS: dict[str, tuple[tuple[float, float], ...]] = {
    **{f"{s}_{base}": intervals for s in SIDES for base, intervals in (
        ("elbow", BEND_INTERVALS_DEG), ("knee", BEND_INTERVALS_DEG),
        ("upper_arm", DIRECTION_INTERVALS_DEG), ("thigh", DIRECTION_INTERVALS_DEG),
        ("hand_head", (HAND_NEAR_HEAD, HAND_FAR_FROM_HEAD)),
        ("foot_ground", (ANKLE_ON_GROUND, ANKLE_OFF_GROUND)),
        ("knee_ground", (KNEE_ON_GROUND, KNEE_OFF_GROUND)))},
    "hands_distance": HANDS_DISTANCE_INTERVALS, "feet_distance": FEET_DISTANCE_INTERVALS,
    "torso": TORSO_INTERVALS_DEG, "lean_fb": LEAN_INTERVALS_DEG, "lean_lr": LEAN_INTERVALS_DEG,
    "facing": FACING_INTERVALS_DEG,
}
"""Codes binned from one value into intervals (``posecodes.measure_posecodes``); the others are
signed binaries around a dead band at 0 (both categories border it) and the hand height."""

_PERIODIC = {"facing": 360.0}


def _bordering(value: float, intervals: tuple[tuple[float, float], ...],
               period: float | None = None) -> frozenset[int]:
    """The categories on either side of the dead band ``value`` lies in (the nearest interval
    below and above it; around the circle for a periodic value)."""
    shifts = (0.0,) if period is None else (-period, 0.0, period)
    below = min(((value + s - high, k) for s in shifts for k, (_, high) in enumerate(intervals)
                 if high <= value + s), default=None)
    above = min(((low - value - s, k) for s in shifts for k, (low, _) in enumerate(intervals)
                 if low > value + s), default=None)
    return frozenset(k for _, k in filter(None, (below, above)))


Truth = int | frozenset[int] | None
"""Of one code on one pose: its category; the categories bordering the dead band its value
lies in; or None when it cannot be measured."""


def code_truth(codes: Posecodes, i: int, name: str) -> Truth:
    """What the rules know about code ``name`` of pose ``i`` (see :data:`Truth`)."""
    category = int(codes.codes[name][i])
    if category != UNKNOWN:
        return category
    if name.endswith("_hand_height"):
        # -1 with the hand measured: within the margin of the head top (above head / above
        # shoulder) or, below the head, of the shoulder (above / below shoulder).
        over_head = float(codes.values[f"{name[:2]}hand_over_head"][i])
        if np.isnan(over_head):
            return None
        return frozenset((0, 1)) if over_head >= -HAND_ABOVE_MARGIN else frozenset((1, 2))
    value = float(codes.values[name][i])
    if np.isnan(value):
        return None
    if name in _INTERVALS:
        return _bordering(value, _INTERVALS[name], _PERIODIC.get(name))
    return frozenset(range(len(CODE_CATEGORIES[name])))  # signed: the band lies between both


def _verdict(category: int, truth: Truth) -> bool | None:
    if truth is None:
        return None
    if isinstance(truth, int):
        return category == truth
    return None if category in truth else False  # dead band: bordering unscored, farther false


def claim_verdict(claim: Claim, codes: Posecodes, i: int, action: str | None = None
                  ) -> bool | None:
    """True or False, or None where the claim is not scored (a bordering dead-band category, an
    unmeasurable code, an action claim without a known true label). Malformed: False.
    ``action``: the pose's true label, for action claims."""
    if claim.action is not None:
        truth = action_text(action or "")
        if not truth.phrases:
            return None
        return (claim.action in truth.phrases
                or truth.answer in _phrase_answers().get(claim.action, ()))
    if claim.malformed:
        return False
    verdicts = [_verdict(category, code_truth(codes, i, name)) for name, category in claim.codes]
    if False in verdicts:
        return False
    return None if None in verdicts else True


def caption_precision(captions: Sequence[str], truth: np.ndarray | Posecodes,
                      camera_positions: np.ndarray | None = None,
                      actions: Sequence[str] | None = None) -> dict[str, float]:
    """Caption precision of one caption per pose against the pose's true 3D.

    ``truth``: ``(N, 17, 3)`` world joints (measured here with the captions' own dead bands) or
    their :class:`Posecodes`; ``camera_positions`` ``(N, 3)`` for facing claims; ``actions``
    the true labels, for action claims. Returns ``caption_precision`` (true share of the scored
    body claims, malformed clauses counted false; left out when none is scored),
    ``caption_claims`` (body claims scored, malformed included), ``caption_malformed``,
    ``caption_unscored``, and for action sentences ``caption_action_precision`` and
    ``caption_action_claims``."""
    codes = truth if isinstance(truth, Posecodes) else measure_posecodes(truth, camera_positions)
    if len(captions) != len(codes) or (actions is not None and len(actions) != len(codes)):
        raise ValueError("captions, poses and actions need one entry per pose")
    body = {True: 0, False: 0, None: 0}
    act = {True: 0, False: 0, None: 0}
    malformed = 0
    for i, caption in enumerate(captions):
        action = actions[i] if actions is not None else None
        for claim in caption_claims(caption, (action,) if action else ()):
            malformed += claim.malformed
            verdict = claim_verdict(claim, codes, i, action)
            (act if claim.action is not None else body)[verdict] += 1
    scored = body[True] + body[False]
    out = {"caption_claims": float(scored), "caption_malformed": float(malformed),
           "caption_unscored": float(body[None]),
           "caption_action_claims": float(act[True] + act[False])}
    if scored:
        out["caption_precision"] = body[True] / scored
    if act[True] + act[False]:
        out["caption_action_precision"] = act[True] / (act[True] + act[False])
    return out
