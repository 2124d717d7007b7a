"""Sentence features shared between a run's trainings through files (models/text_features.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from p2l3d_core.models import Student, Teacher, text_features
from p2l3d_core.models.config import TextConfig, preset
from p2l3d_core.models.encoders import TextEncoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SENTENCES = ["The person is kneeling.", "Which hand is further forward?", "Both knees are bent."]


def _encoder(freeze: bool = True) -> TextEncoder:
    return TextEncoder(TextConfig(freeze=freeze), embed_dim=16)


def test_a_later_encoder_reads_what_an_earlier_one_computed_without_running_its_backbone(tmp_path):
    first = _encoder()
    want = first.features(SENTENCES)
    shared_first = text_features.SharedSentences(first, str(tmp_path))
    assert shared_first.load() == set()  # nothing stored yet
    assert shared_first.save_new() == len(SENTENCES)

    later = _encoder()
    shared_later = text_features.SharedSentences(later, str(tmp_path))
    assert shared_later.load() == set(SENTENCES)
    later._features = _no_backbone
    torch.testing.assert_close(later.features(SENTENCES), want)
    # Only what the store lacked is written again: nothing here, one sentence after a new one.
    assert shared_later.save_new() == 0
    later._features = first._features
    later.features(["The person is standing."])
    assert shared_later.save_new() == 1
    assert shared_later.save_new() == 0  # stored once
    assert (len(text_features.SharedSentences(_encoder(), str(tmp_path)).load())
            == len(SENTENCES) + 1)


def test_features_are_read_only_by_an_encoder_with_the_same_weights(tmp_path):
    first = _encoder()
    first.features(SENTENCES)
    text_features.SharedSentences(first, str(tmp_path)).save_new()

    changed = _encoder()
    with torch.no_grad():
        next(changed.backbone.parameters()).add_(0.01)
    assert text_features.fingerprint(changed) != text_features.fingerprint(first)
    assert text_features.SharedSentences(changed, str(tmp_path)).load() == set()
    # A backbone that trains has no fixed features to share.
    trained = _encoder(freeze=False)
    shared_trained = text_features.SharedSentences(trained, str(tmp_path))
    assert shared_trained.load() == set()
    trained.features(SENTENCES)
    assert shared_trained.save_new() == 0


def test_a_damaged_file_is_named_and_skipped_and_the_rest_still_read(tmp_path):
    first = _encoder()
    first.features(SENTENCES)
    shared = text_features.SharedSentences(first, str(tmp_path))
    shared.save_new()
    damaged = tmp_path / text_features.fingerprint(first) / "damaged.safetensors"
    damaged.write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="damaged.safetensors: unreadable sentence features"):
        read = text_features.SharedSentences(_encoder(), str(tmp_path)).load()
    assert read == set(SENTENCES)


def _no_backbone(texts):
    raise AssertionError(f"the backbone ran on {texts}")


def test_a_distilled_student_and_its_teacher_embed_a_sentence_once_and_store_it_once(tmp_path):
    cfg = preset("tiny", 32)
    teacher, student = Teacher(cfg).eval(), Student(cfg)
    student.adopt_language(teacher)
    want = teacher.text.features(SENTENCES)
    student.text._features = _no_backbone
    torch.testing.assert_close(student.text.features(SENTENCES), want)
    stores = text_features.stores_of([student.text, teacher.text], str(tmp_path))
    assert len(stores) == 1
    assert stores[0].save_new() == len(SENTENCES)
    assert len(list(tmp_path.rglob("*.safetensors"))) == 1


def test_a_teacher_whose_text_encoder_trains_shares_no_cache_with_its_student(tmp_path):
    cfg = preset("tiny", 32)
    teacher = Teacher(dataclasses.replace(cfg, text=TextConfig(freeze=False))).eval()
    student = Student(cfg)
    student.adopt_language(teacher)
    assert student.text.sentence_cache is not teacher.text.sentence_cache
    assert len(text_features.stores_of([student.text, teacher.text], str(tmp_path))) == 2


def test_a_bf16_student_and_its_float32_teacher_share_the_cache_each_in_its_own_dtype():
    # On a GPU the student trains in bf16 (DeepSpeed) beside its frozen float32 teacher, the
    # two reading one sentence cache, whichever of them filled it.
    cfg = preset("tiny", 32)
    teacher, student = Teacher(cfg).eval(), Student(cfg)
    student.adopt_language(teacher)
    student.to(torch.bfloat16)
    assert student.text(SENTENCES[:2]).dtype == torch.bfloat16  # the student fills the cache
    assert teacher.text(SENTENCES).dtype == torch.float32  # reads two, computes one
    assert student.text(SENTENCES).dtype == torch.bfloat16
    assert {t.dtype for t in teacher.text.sentence_cache.values()} == {torch.float32}
