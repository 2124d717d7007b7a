"""Closed-vocabulary answers: a head that reads a pose embedding and a question embedding.

Every question family answers from a fixed vocabulary (``questions.FAMILY_ANSWERS``), so an
answer can be learned as a class. The decoder learns one caption *or* one answer per pose per
step; the head learns every question of every labelled pose each step (about 16 per pose) for
the price of an MLP, which is what depth relations need to be learned from ~2k labelled poses.
On the unlabelled pool the teacher's answer distributions over a fixed question bank are the
student's targets (``losses.answer_kd``). The decoder still writes captions and free answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from p2l3d_core.language.questions import (
    FAMILY_ANSWERS,
    FAMILY_NEEDS_DEPTH,
    QUESTION_BANK,
    SENTENCES,
)


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """What a model answers, as it was trained: each family's closed answers (the answer head's
    classes are every family's answers in this order, each once), whether the family needs depth,
    the question bank with each answer as a sentence. Saved in the model folder.

    Why saved: computed from code at load time, a change to a family would silently remap every
    saved model's classes. A loaded model answers with its own vocabulary."""

    families: dict[str, tuple[str, ...]]
    needs_depth: dict[str, bool]
    bank: tuple[tuple[str, str], ...]
    sentences: dict[str, dict[str, str]]
    answers: tuple[str, ...] = field(init=False)
    """The head's classes: every family's answers, each once ("left" serves several families)."""
    _order: dict[str, int] = field(init=False, repr=False)
    _masks: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        answers = tuple(dict.fromkeys(a for v in self.families.values() for a in v))
        index = {a: i for i, a in enumerate(answers)}
        masks = torch.zeros(len(self.families), len(index), dtype=torch.bool)
        for i, family_answers in enumerate(self.families.values()):
            masks[i, [index[a] for a in family_answers]] = True
        object.__setattr__(self, "answers", answers)
        object.__setattr__(self, "_order", {f: i for i, f in enumerate(self.families)})
        object.__setattr__(self, "_masks", masks)

    def __eq__(self, other: object) -> bool:
        """Equal in order too: the order of families and answers is the head's class order."""
        return isinstance(other, Vocabulary) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def mask(self, families: list[str]) -> torch.Tensor:
        """``(N, len(answers))`` bool: which classes each question's family allows. A lookup in
        a per-family table: a student step asks the question bank of every row (~4k
        questions)."""
        try:
            index = [self._order[f] for f in families]
        except KeyError as err:
            raise ValueError(f"unknown question family {err.args[0]!r}") from None
        return self._masks[torch.tensor(index, dtype=torch.long)]

    @classmethod
    def current(cls) -> Vocabulary:
        """This code's families and bank: what a model trained now learns."""
        return cls(dict(FAMILY_ANSWERS), dict(FAMILY_NEEDS_DEPTH), QUESTION_BANK,
                   {q: dict(a) for q, a in SENTENCES.items()})

    def to_dict(self) -> dict:
        """Lists where order matters (a JSON object's keys may be sorted on the way): the
        families in order, and the answer classes they give, checked on load."""
        return {"families": [[f, list(a)] for f, a in self.families.items()],
                "answers": list(self.answers),
                "needs_depth": dict(self.needs_depth),
                "question_bank": [list(fq) for fq in self.bank], "sentences": self.sentences}

    @classmethod
    def from_dict(cls, d: dict, where: str = "model folder") -> Vocabulary:
        """The stored vocabulary, checked: every bank question belongs to a family and has a
        sentence for each of its family's answers."""
        try:
            families = {str(f): tuple(str(a) for a in v) for f, v in d["families"]}
            bank = tuple((str(f), str(q)) for f, q in d["question_bank"])
            vocab = cls(families, {f: bool(d["needs_depth"][f]) for f in families}, bank,
                        {str(q): {str(a): str(t) for a, t in v.items()}
                         for q, v in d["sentences"].items()})
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"{where}: its answer vocabulary is incomplete or malformed "
                             f"({type(err).__name__}: {err})") from None
        if list(vocab.answers) != list(d.get("answers") or []):
            raise ValueError(f"{where}: the stored answer classes do not follow from the stored "
                             "families: the vocabulary is damaged")
        for family, question in bank:
            if family not in families or set(vocab.sentences.get(question, {})) != set(
                    families[family]):
                raise ValueError(f"{where}: bank question {question!r} does not match family "
                                 f"{family!r} and its answers")
        return vocab


CURRENT: Vocabulary = Vocabulary.current()
"""This code's vocabulary: what training learns. A loaded model answers with its own."""
ANSWERS: tuple[str, ...] = CURRENT.answers
ANSWER_INDEX: dict[str, int] = {a: i for i, a in enumerate(ANSWERS)}
FAMILIES: tuple[str, ...] = tuple(CURRENT.families)
family_mask = CURRENT.mask


def answer_ids(answers: list[str]) -> torch.Tensor:
    """Class index of each answer; an answer outside :data:`ANSWERS` is an error naming it."""
    unknown = sorted({a for a in answers if a not in ANSWER_INDEX})
    if unknown:
        raise ValueError(f"answers outside the closed vocabulary: {unknown[:5]}")
    return torch.tensor([ANSWER_INDEX[a] for a in answers], dtype=torch.long)


class AnswerHead(nn.Module):
    """``(pose, question)`` embeddings -> logits over :data:`ANSWERS`. The product term lets a
    small MLP read "this question about this pose" without learning the pairing from scratch.

    ``geometry``: the width of the pose's geometry (``geometry.py``), read beside the embedding,
    0 for none. It enters the first layer's sum outside the layer norm: the numbers keep their
    scale, so a category threshold is one unit's bias."""

    def __init__(self, embed_dim: int, hidden: int | None = None, classes: int = len(ANSWERS),
                 geometry: int = 0):
        super().__init__()
        hidden = hidden or 2 * embed_dim
        self.embed_dim, self.geometry_width = embed_dim, geometry
        self.net = nn.Sequential(nn.LayerNorm(3 * embed_dim), nn.Linear(3 * embed_dim, hidden),
                                 nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, classes))
        self.geometry = nn.Linear(geometry, hidden, bias=False) if geometry else None

    def split(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A pose state (the embedding, then the geometry when the head reads one) -> its two
        parts. A state without the geometry this head reads is an error, not zeros."""
        if pose.shape[-1] != self.embed_dim + self.geometry_width:
            raise ValueError(f"the answer head reads a {self.embed_dim}-wide embedding"
                             + (f" and {self.geometry_width} geometry numbers"
                                if self.geometry_width else "")
                             + f"; got {pose.shape[-1]} numbers a pose (the model's pose_state)")
        if not self.geometry_width:
            return pose, None
        return pose[..., :self.embed_dim], pose[..., self.embed_dim:]

    def forward(self, pose: torch.Tensor, question: torch.Tensor,
                blind: torch.Tensor | None = None,
                columns: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of question ``i`` about pose state ``i`` (``(N, D[+G])`` and ``(N, D)``).
        ``blind``: ``(N,)`` bool, questions answered without the pose embedding (from the
        question and the geometry: ``geometry.GEOMETRY_FAMILIES``). ``columns``: ``(N, G)``
        0/1, the geometry numbers each question reads (``geometry.FAMILY_COLUMNS``; all when
        None)."""
        z, geometry = self.split(pose)
        if blind is not None:
            z = z * (~blind).to(z.dtype)[:, None]
        hidden = self.net[1](self.net[0](torch.cat([z, question, z * question], dim=-1)))
        if geometry is not None:
            if columns is not None:
                geometry = geometry * columns.to(geometry.dtype)
            hidden = hidden + self.geometry(geometry.to(hidden.dtype))
        return self.net[2:](hidden)

    def pairs(self, poses: torch.Tensor, questions: torch.Tensor, rows: torch.Tensor,
              which: torch.Tensor, blind: torch.Tensor | None = None,
              columns: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of question ``which[k]`` about pose ``rows[k]``: ``net`` applied to
        ``[p, q, p * q]`` of each pair, without building that concatenation.

        Why: a distilled student's step asks every pose the whole question bank (64 poses x 60
        questions), so the head runs on thousands of pairs made of a few dozen distinct vectors,
        and it was two thirds of the step. The first linear layer is split by input block: the
        pose and question blocks are computed once per distinct vector and gathered; only the
        product block and the layer norm's statistics (sums over the three blocks) are per pair.
        The same numbers as the concatenation to float rounding (``tests/models/test_answers.py``).
        Few pairs (one question about one pose, as a service answers) take the concatenation:
        folding the layer norm into the weights costs more than the split saves them."""
        if len(rows) <= 2 * (len(poses) + len(questions)):
            return self(poses[rows], questions[which], blind, columns)
        poses, geometry = self.split(poses)
        norm, first = self.net[0], self.net[1]
        d = poses.shape[-1]
        weight = first.weight * norm.weight  # (H, 3D): the layer norm's scale folded in
        # 1 where a pair reads the pose embedding, 0 where it is blind to it
        seen = (torch.ones(len(rows), device=poses.device) if blind is None
                else (~blind).float())
        p, q = poses[rows] * seen.to(poses.dtype)[:, None], questions[which]
        pq = p * q
        # Layer-norm statistics of [p, q, pq], from per-vector sums, in float32 (bf16 on a GPU
        # would lose the variance to cancellation).
        total = (poses.float().sum(-1)[rows] * seen + questions.float().sum(-1)[which]
                 + pq.float().sum(-1))
        squares = ((poses.float() ** 2).sum(-1)[rows] * seen
                   + (questions.float() ** 2).sum(-1)[which] + (pq.float() ** 2).sum(-1))
        mean = total / (3 * d)
        scale = torch.rsqrt(squares / (3 * d) - mean ** 2 + norm.eps)
        mixed = ((poses @ weight[:, :d].T)[rows] * seen.to(p.dtype)[:, None]
                 + (questions @ weight[:, d:2 * d].T)[which]
                 + pq @ weight[:, 2 * d:].T - mean.to(p.dtype)[:, None] * weight.sum(1))
        hidden = scale.to(p.dtype)[:, None] * mixed + first.weight @ norm.bias + first.bias
        if geometry is not None:  # outside the layer norm, as in forward
            if columns is None:
                hidden = hidden + self.geometry(geometry.to(p.dtype))[rows]
            else:  # per pair: each reads its own columns
                hidden = hidden + self.geometry((geometry[rows] * columns.to(geometry.dtype))
                                                .to(p.dtype))
        return self.net[2:](hidden)


@dataclass(frozen=True)
class Asked:
    """Questions put to a batch of poses: question ``k`` is about pose ``rows[k]``; ``mask``
    holds its family's answers, ``families`` its family's name (families may share their
    answers: hand_side, foot_forward and hand_forward are all left or right) and ``answers`` the
    true class when known (labelled rows)."""

    rows: torch.Tensor
    questions: list[str]
    mask: torch.Tensor
    families: tuple[str, ...]
    answers: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.questions)

    def to(self, device) -> Asked:
        return replace(self, rows=self.rows.to(device), mask=self.mask.to(device),
                       answers=None if self.answers is None else self.answers.to(device))

    @classmethod
    def of(cls, rows: list[int], questions: list[str], families: list[str],
           answers: list[str] | None = None) -> Asked:
        return cls(torch.tensor(rows, dtype=torch.long), list(questions), family_mask(families),
                   tuple(families), None if answers is None else answer_ids(answers))

    @classmethod
    def bank(cls, num_rows: int) -> Asked:
        """Every question of ``QUESTION_BANK`` about each of ``num_rows`` poses (no answers)."""
        families = [f for f, _ in QUESTION_BANK]
        questions = [q for _, q in QUESTION_BANK]
        return cls.of([r for r in range(num_rows) for _ in QUESTION_BANK],
                      questions * num_rows, families * num_rows)
