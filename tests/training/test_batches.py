"""Dataset rows -> the questions a training step asks (answers, families, rows)."""

from __future__ import annotations

import pytest

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.build import build_table
from p2l3d_core.models.answers import ANSWERS, family_mask
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.training.batches import asked_questions, language_2d


@pytest.fixture(scope="module")
def batch() -> dict:
    table = build_table(generate_records(2, 0, 6), DatasetConfig(num_poses=6, image_size=32)).table
    return {k: v.to_numpy(zero_copy_only=False) for k, v in
            zip(table.column_names, table.columns)}


def test_asked_questions_keep_each_row_question_answer_and_family(batch):
    asked = asked_questions(batch, [1, 4])
    qs = list(batch["questions"][1]) + list(batch["questions"][4])
    assert asked.questions == qs
    assert asked.rows.tolist() == ([1] * len(batch["questions"][1])
                                   + [4] * len(batch["questions"][4]))
    answers = list(batch["answers"][1]) + list(batch["answers"][4])
    assert [ANSWERS[i] for i in asked.answers.tolist()] == answers
    families = list(batch["question_families"][1]) + list(batch["question_families"][4])
    assert (asked.mask == family_mask(families)).all()
    assert asked.mask[range(len(asked)), asked.answers].all()  # every answer is in its family


def test_language_2d_replaces_families_with_its_questions(batch):
    flat = language_2d(batch, seed=0)
    for qs, fams, ans in zip(flat["questions"], flat["question_families"], flat["answers"]):
        assert len(qs) == len(fams) == len(ans)
        assert "foot_forward" not in fams and "hand_front_back" not in fams  # no depth from 2D
    assert len(asked_questions(flat, range(6))) == sum(len(q) for q in flat["questions"])
