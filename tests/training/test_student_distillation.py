"""The student stage: distilled from a frozen teacher on labelled rows plus an unlabelled pool."""

import numpy as np
import pytest
import ray.data
import torch

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.build import build_table, labelled_mask
from p2l3d_core.models import Student, load_pretrained
from p2l3d_core.models.config import preset
from p2l3d_core.models.decoder import CAPTION_PROMPT
from p2l3d_core.models.inputs import images_to_tensor
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.render import decode_png
from p2l3d_core.training.config import TrainConfig
from p2l3d_core.training.loops import train_student, train_teacher
from p2l3d_core.training.runner import export_model, fit, run_steps

pytestmark = pytest.mark.slow
COLS = ["pose_id", "image_2d", "image_3d", "keypoints_2d", "visible_2d", "captions", "questions",
        "answers", "question_families"]


@pytest.fixture(scope="module")
def data():
    table = build_table(generate_records(1, 0, 224),
                        DatasetConfig(num_poses=224, image_size=32)).table
    return {"train": ray.data.from_arrow(table.slice(0, 160).select(COLS)),
            "val": ray.data.from_arrow(table.slice(160, 64).select(COLS)), "table": table}


@pytest.fixture(scope="module")
def teacher_dir(ray_local, data, tmp_path_factory) -> str:
    """One trained teacher for the module's students (a Ray Train fit costs ~45 s here)."""
    tmp = tmp_path_factory.mktemp("teacher")
    cfg = TrainConfig(model=preset("tiny", 32), epochs=2, batch_size=16, lr=3e-3,
                      labelled_fraction=0.5)
    run = fit(train_teacher, cfg, {"train": data["train"], "val": data["val"]}, name="teacher",
              storage_path=str(tmp), max_failures=0)
    return str(export_model(run, tmp / "export" / "teacher"))


def test_labelled_mask_is_stable_and_follows_the_fraction():
    ids = [f"syn-0-{i:08d}" for i in range(2000)]
    mask = labelled_mask(ids, 0.25)
    assert np.array_equal(mask, labelled_mask(ids, 0.25)) and abs(mask.mean() - 0.25) < 0.04
    assert labelled_mask(ids, 1.0).all()


def test_student_distils_from_the_teacher(ray_local, data, teacher_dir, tmp_path):
    model = preset("tiny", 32)
    # A cosine learning rate too (the module's teacher keeps the constant default): 160 rows on 2
    # workers in batches of 16 are 5 steps a worker an epoch. Four pool rows a batch learn the
    # teacher's captions (written inside each worker).
    cfg = TrainConfig(model=model, epochs=3, batch_size=16, lr=3e-3, labelled_fraction=0.5,
                      teacher_path=teacher_dir, lr_schedule="cosine", pool_captions=4,
                      total_steps=run_steps(160, TrainConfig(epochs=3, batch_size=16), 2))
    assert cfg.total_steps == 15
    result = fit(train_student, cfg, {"train": data["train"], "val": data["val"]},
                 name="student", storage_path=str(tmp_path), max_failures=0)
    history = [m for _, m in result.best_checkpoints]
    assert [m["epoch"] for m in history] == [0, 1, 2]
    lrs = [m["lr"] for m in history]  # annealed, down to 1 % of lr by the last step
    assert 3e-3 > lrs[0] > lrs[1] > lrs[2] and lrs[2] < 3e-4, lrs
    assert history[-1]["train_match"] < history[0]["train_match"]  # closer to the teacher
    assert history[-1]["val_cosine_to_teacher"] > history[0]["val_cosine_to_teacher"]
    assert "train_lm" in history[-1] and "train_rkd" in history[-1]
    assert {"train_answer", "train_answer_kd", "val_vqa", "val_vqa_depth"} <= set(history[-1])

    student = load_pretrained(export_model(result, tmp_path / "export" / "student"))
    assert isinstance(student, Student) and not hasattr(student, "image_3d")
    teacher = load_pretrained(teacher_dir)
    texts = ["a person is standing"]
    with torch.no_grad():  # the student kept the teacher's text space
        assert torch.allclose(student.text(texts), teacher.text(texts), atol=1e-6)
        row = data["table"].slice(170, 2).to_pylist()
        x = images_to_tensor(np.stack([decode_png(r["image_2d"]) for r in row]))
        captions = student.decoder.generate(student.encode_pose({"image": x}), [CAPTION_PROMPT] * 2,
                                            max_new_tokens=12)
    assert len(captions) == 2 and all(isinstance(c, str) for c in captions)


def test_a_student_may_read_other_inputs_than_its_teacher(ray_local, data, teacher_dir, tmp_path):
    """A keypoint-only student of an image teacher: the teacher is fed its own inputs."""
    splits = {"train": data["train"], "val": data["val"]}
    cfg = TrainConfig(model=preset("tiny", 32, pose_input="keypoints"), epochs=1, batch_size=16,
                      labelled_fraction=0.5, teacher_path=teacher_dir)
    result = fit(train_student, cfg, splits, name="student", storage_path=str(tmp_path),
                 max_failures=0)
    assert result.error is None and result.metrics["epoch"] == 0
    assert (0.0 < result.metrics["train_answer_kd"]
            and -1.0 <= result.metrics["val_cosine_to_teacher"] <= 1.0)
    student = load_pretrained(export_model(result, tmp_path / "export" / "student"))
    assert student.cfg.pose_input == "keypoints" and student.encoder_2d.image is None


def test_a_student_distils_in_bf16_beside_its_float32_teacher(ray_local, data, teacher_dir,
                                                              tmp_path):
    """The GPU path's precision (DeepSpeed bf16, the frozen teacher float32) on CPU workers: CI
    has no GPU. Before, the shared sentence cache and validation mixed the two dtypes."""
    cfg = TrainConfig(model=preset("tiny", 32), epochs=1, batch_size=16, lr=3e-3,
                      labelled_fraction=0.5,
                      teacher_path=teacher_dir, pool_captions=2, bf16=True,
                      text_features=str(tmp_path / "text_features"))
    result = fit(train_student, cfg, {"train": data["train"], "val": data["val"]},
                 name="student_bf16", storage_path=str(tmp_path), max_failures=0)
    assert result.error is None
    assert np.isfinite(result.metrics["train_loss"]) and 0.0 <= result.metrics["val_vqa"] <= 1.0
    assert -1.0 <= result.metrics["val_cosine_to_teacher"] <= 1.0
    exported = export_model(result, tmp_path / "export" / "student")
    from safetensors.torch import load_file

    assert ({t.dtype for t in load_file(f"{exported}/model.safetensors").values()}
            == {torch.bfloat16})
    student = load_pretrained(exported)  # loads as float32, as inference runs
    assert next(student.parameters()).dtype == torch.float32
    # Its bf16-rounded sentence features are stored apart, where no float32 run reads them.
    stored = list((tmp_path / "text_features").rglob("*.safetensors"))
    assert stored and all(p.parent.parent.name == "bf16" for p in stored)
