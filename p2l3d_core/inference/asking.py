"""Free-text questions matched to the model's question bank.

A user types any question. It is compared with every question of the bank the model was
trained on (its stored ``Vocabulary``) by the cosine similarity of their sentence embeddings
(the model's own text backbone, MiniLM, mean-pooled, before the learned projection: the
pretrained space is the one where paraphrases lie close). At or above :data:`MATCH_THRESHOLD`
the question is answered by its family's answer head and the matched bank question is reported;
below it the decoder writes a free answer (``free_form``).

Why a side check: sentence embeddings barely tell "left knee" from "right knee" (similarity
~0.97), so a bank question that names only the other side is never the match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from p2l3d_core.inference.images import BadInput
from p2l3d_core.models.answers import Vocabulary

# Measured in benchmarks/predictor.py: a user's paraphrases of bank questions score about
# 0.65-1, questions no family answers below about 0.55.
MATCH_THRESHOLD = 0.6
MAX_QUESTION_CHARS = 300
_SIDES = re.compile(r"\b(left|right)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Match:
    """A user's question and the bank question it matched (``family`` None: free form)."""

    question: str
    matched_question: str | None
    family: str | None
    similarity: float

    @property
    def free_form(self) -> bool:
        return self.family is None


def check_question(question, k: int = 0) -> str:
    """A question as text, stripped; :class:`BadInput` for an empty or overlong one."""
    if not isinstance(question, str):
        raise BadInput(f"question {k + 1}: text expected, got {type(question).__name__}")
    text = " ".join(question.split())
    if not text:
        raise BadInput(f"question {k + 1}: empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise BadInput(f"question {k + 1}: {len(text)} characters, over the limit of "
                       f"{MAX_QUESTION_CHARS}")
    return text


def _sides(text: str) -> set[str]:
    return {s.lower() for s in _SIDES.findall(text)}


class QuestionMatcher:
    """Matches questions to ``vocab.bank`` with ``embed`` (texts -> ``(N, D)`` features)."""

    def __init__(self, vocab: Vocabulary, embed, threshold: float = MATCH_THRESHOLD):
        self.vocab = vocab
        self.embed = embed
        self.threshold = threshold
        self.bank_questions = [q for _, q in vocab.bank]
        self.bank_families = [f for f, _ in vocab.bank]
        self._bank = self._normalised(self.bank_questions)
        self._bank_sides = [_sides(q) for q in self.bank_questions]
        self._cache: dict[str, Match] = {}

    def _normalised(self, texts: list[str]) -> torch.Tensor:
        return torch.nn.functional.normalize(self.embed(texts).float(), dim=-1)

    def match(self, questions: list[str]) -> list[Match]:
        """Each question's match; a bank question matches itself exactly."""
        new = [q for q in dict.fromkeys(questions) if q not in self._cache]
        if new:
            sims = self._normalised(new) @ self._bank.T
            for q, row in zip(new, sims):
                asked = _sides(q)
                for i, sides in enumerate(self._bank_sides):  # names only the other side
                    if asked and sides and not sides & asked:
                        row[i] = -1.0
                best = int(row.argmax())
                similarity = float(row[best])
                if q in self.bank_questions:
                    best, similarity = self.bank_questions.index(q), 1.0
                hit = similarity >= self.threshold
                self._cache[q] = Match(q, self.bank_questions[best] if hit else None,
                                       self.bank_families[best] if hit else None,
                                       round(similarity, 4))
        return [self._cache[q] for q in questions]

    def examples(self, per_family: int = 3) -> dict[str, list[str]]:
        """Each family with up to ``per_family`` example phrasings from the bank."""
        out: dict[str, list[str]] = {f: [] for f in self.vocab.families}
        for family, question in self.vocab.bank:
            if len(out[family]) < per_family:
                out[family].append(question)
        return out
