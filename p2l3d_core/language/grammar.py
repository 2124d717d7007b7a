"""What a caption can say, as a grammar over the caption templates (``captions.py``).

A caption is sentences; a sentence is an action sentence ("the person is walking") or clauses
joined by the connectors (``captions.CONNECTORS``), each clause restating one posecode category.
Three readers need that grammar: caption precision (``evaluation/claims.py``) parses a generated
caption back into the claims it makes, and constrained decoding (``models/grammar.py``) lets the
decoder write only clauses the templates can write, so that every clause it writes is a claim
about the body, never a malformed or self-contradicting one; and :func:`unit_answers` ties each
clause to the question whose answer it fixes, so that a caption can be kept to what the model's
own answer head says.

The clause table is built by asking ``pose_facts`` for every category of every code, so it
follows the templates exactly: a template edited there changes the grammar here.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from p2l3d_core.language.actions import action_sentences, action_text, known_labels
from p2l3d_core.language.captions import CONNECTORS, pose_facts
from p2l3d_core.language.posecodes import (
    CODE_CATEGORIES,
    SIDE_CODE_CATEGORIES,
    UNKNOWN,
    Posecodes,
)
from p2l3d_core.language.questions import REGISTRY, answer_table


def normalise(text: str) -> str:
    """Lower case, single spaces, no space before punctuation: what a decoder may vary."""
    text = re.sub(r"\s+", " ", text.strip().lower())
    return re.sub(r" (?=[.,;])", "", text)


def _one_pose(codes: dict[str, int]) -> Posecodes:
    """Posecodes of one pose with only ``codes`` known: what one fact is written from."""
    full = {name: np.array([codes.get(name, UNKNOWN)], dtype=np.int8) for name in CODE_CATEGORIES}
    return Posecodes(codes=full, values={}, num_poses=1)


@lru_cache(maxsize=1)
def clause_table() -> dict[str, tuple[tuple[str, int], ...]]:
    """Every clause the caption templates can write (normalised) -> the posecode categories it
    asserts (two for a "both ..." clause). Built by asking ``pose_facts`` about poses with a
    single known code, or a left/right pair with the same category."""
    probes: list[dict[str, int]] = []
    for base, categories in SIDE_CODE_CATEGORIES.items():
        for k in range(len(categories)):
            probes += [{f"l_{base}": k}, {f"r_{base}": k}, {f"l_{base}": k, f"r_{base}": k}]
    for name, categories in CODE_CATEGORIES.items():
        if name[:2] not in ("l_", "r_"):
            probes += [{name: k} for k in range(len(categories))]
    table: dict[str, tuple[tuple[str, int], ...]] = {}
    for probe in probes:
        asserted = tuple(sorted(probe.items()))
        for _, clauses, _ in pose_facts(_one_pose(probe), 0):
            for clause in clauses:
                key = normalise(clause)
                if table.setdefault(key, asserted) != asserted:  # a template bug: say so
                    raise ValueError(f"clause {clause!r} is written for two different claims")
    return table


@lru_cache(maxsize=1)
def action_units() -> tuple[str, ...]:
    """Every action sentence of the known action labels, normalised, without its full stop:
    the sentences a caption may hold whole (they are not joined to clauses)."""
    return tuple(sorted({normalise(s).rstrip(".") for label in known_labels()
                         for s in action_sentences(action_text(label))}))


CONNECTOR_TEXTS: tuple[str, ...] = tuple(normalise(c).strip() for c in CONNECTORS)
"""The connectors as a decoder writes them: "and", ", and", ", while", ";"."""


@lru_cache(maxsize=1)
def _canonical_questions() -> dict[str, str]:
    """Every bank question paraphrase -> the first paraphrase of its group."""
    out = {}
    for family in REGISTRY:
        for table in family.tables:
            for questions, _, _ in table:
                out.update(dict.fromkeys(questions, questions[0]))
    return out


@lru_cache(maxsize=1)
def unit_answers() -> dict[str, tuple[tuple[str, frozenset[str]], ...]]:
    """Each unit (clause or action sentence) -> ``(question, answers)`` pairs: the bank
    questions (first paraphrase) whose answer the unit's claim fixes, and the answers that agree
    with it. "the left knee is bent" fixes "Is the left knee bent or straight?" to "bent"; an
    action sentence fixes "What is the person doing?" to its label's answer. A clause about a
    code no question reads alone (one foot's contact) fixes nothing."""
    canonical = _canonical_questions()
    out: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {}
    for clause, asserted in clause_table().items():
        table = answer_table(_one_pose(dict(asserted)), 0, "")
        out[clause] = tuple(sorted({(canonical[q], frozenset({a})) for q, a in table.items()},
                                   key=lambda qa: qa[0]))
    actions: dict[str, set[str]] = {}
    for label in known_labels():
        text = action_text(label)
        for sentence in action_sentences(text):
            actions.setdefault(normalise(sentence).rstrip("."), set()).add(text.answer)
    question = canonical[next(iter(answer_table(_one_pose({}), 0, "walking")))]
    for unit, answers in actions.items():
        out[unit] = ((question, frozenset(answers)),)
    return out


def guide_questions() -> tuple[tuple[str, str], ...]:
    """``(family, question)`` of every question :func:`unit_answers` refers to, in bank order:
    what an answer head is asked to guide a caption."""
    asked = {q for pairs in unit_answers().values() for q, _ in pairs}
    family = {q: f.name for f in REGISTRY for table in f.tables for qs, _, _ in table
              for q in qs}
    return tuple((family[q], q) for q in dict.fromkeys(_canonical_questions().values())
                 if q in asked)
