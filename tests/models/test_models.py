"""Teacher, student, decoder and save/load on small configs (seconds on a CPU)."""

import numpy as np
import pytest
import torch

from p2l3d_core.models import PoseModelConfig, Student, Teacher, load_pretrained, save_pretrained
from p2l3d_core.models.config import DecoderConfig, VisionConfig, preset
from p2l3d_core.models.decoder import CAPTION_PROMPT, question_prompt
from p2l3d_core.models.inputs import images_to_tensor

TINY = PoseModelConfig(
    embed_dim=32,
    vision=VisionConfig(image_size=32, patch_size=8, hidden_size=32, num_layers=1, num_heads=2,
                        intermediate_size=64),
    decoder=DecoderConfig(num_layers=1, hidden_size=32, num_heads=2, prefix_tokens=2,
                          max_length=24),
)


def _images(n, size=32, seed=0):
    return images_to_tensor(np.random.default_rng(seed).integers(0, 255, (n, size, size, 3),
                                                                 dtype=np.uint8))


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return Teacher(TINY)


def test_images_to_tensor_checks_its_input():
    x = _images(2)
    assert x.shape == (2, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor(np.zeros((2, 32, 32, 3), dtype=np.float32))


def test_text_encoder_is_the_pretrained_minilm(teacher):
    feats = torch.nn.functional.normalize(teacher.text.features([
        "The left hand is raised above the head.",
        "The person lifts the left hand over the head.",
        "Stock markets fell sharply on Monday."]), dim=-1)
    sim = feats @ feats.t()
    assert sim[0, 1] > 0.7 and 0.3 > sim[0, 2]  # pretrained semantics, no download
    assert not any(p.requires_grad for p in teacher.text.backbone.parameters())


def test_teacher_embeddings_are_normalised_and_partial_inputs_work(teacher):
    x2, x3 = _images(4), _images(4, seed=1)
    out = teacher.contrastive_loss({"image": x2}, x3, teacher.text(["a", "b", "c", "d"]))
    for key in ("emb_fused", "emb_z2d", "emb_z3d"):
        assert torch.allclose(out[key].norm(dim=-1), torch.ones(4), atol=1e-5)
    assert out["loss"] > 0 and torch.isfinite(out["loss"])
    assert teacher.encode_pose({"image": x2}).shape == (4, 32)


def test_a_few_steps_fit_captions_and_answers():
    torch.manual_seed(0)
    model = Student(TINY)
    x = _images(2)
    prompts = [CAPTION_PROMPT, question_prompt("Which hand is further forward?")]
    targets = ["the person is kneeling", "left"]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    first = None
    for _ in range(120):
        loss = model.decoder(model.encode_pose({"image": x}), prompts, targets)
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first / 5
    model.eval()
    assert model.decoder.generate(model.encode_pose({"image": x}), prompts,
                                  max_new_tokens=8) == targets


def test_save_and_load_round_trip(tmp_path, teacher):
    teacher.eval()
    x2, x3 = _images(3), _images(3, seed=2)
    folder = save_pretrained(teacher, tmp_path / "teacher", extra={"render": {"image_size": 32}})
    assert ({"config.json", "model.safetensors", "tokenizer.json"}
            <= {p.name for p in folder.iterdir()})
    again = load_pretrained(folder)
    assert isinstance(again, Teacher)
    with torch.no_grad():
        assert torch.allclose(teacher.encode_pose({"image": x2}, x3),
                              again.encode_pose({"image": x2}, x3), atol=1e-6)
        assert torch.allclose(teacher.text(["hello"]), again.text(["hello"]), atol=1e-6)


def test_loading_something_else_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="expected 'p2l3d-model/3'"):
        load_pretrained(tmp_path)
    for old in (1, 2):  # 2 had no stored vocabulary: its answer classes came from code
        (tmp_path / "config.json").write_text(f'{{"format": "p2l3d-model/{old}"}}')
        with pytest.raises(ValueError, match="older version.*answer vocabulary.*retrain"):
            load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "p2l3d-model/7"}')
    with pytest.raises(ValueError, match="saved by a newer version of this package.*upgrade"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "p2l3d-model/3", "kind": ')  # cut short
    with pytest.raises(ValueError, match=f"{tmp_path / 'config.json'} is not valid JSON"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('["p2l3d-model/3"]')
    with pytest.raises(ValueError, match="holds list, not a model config"):
        load_pretrained(tmp_path)


def test_a_model_folder_without_its_tokenizer_is_named(tmp_path):
    """It failed with ``KeyError: 1`` deep in the decoder."""
    save_pretrained(Student(preset("tiny", 32)), tmp_path / "m")
    for path in (tmp_path / "m").rglob("tokenizer*"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'm'} is incomplete: no tokenizer"):
        load_pretrained(tmp_path / "m")


def _edit_config(folder, change) -> None:
    import json

    path = folder / "config.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def test_a_saved_model_answers_with_its_own_stored_vocabulary(tmp_path):
    """The answer classes are read from the folder, not recomputed from code: a family whose
    answers were renamed after training still maps the head's classes to the saved names."""
    from p2l3d_core.models.answers import Vocabulary

    model = Student(preset("tiny", 32))
    folder = save_pretrained(model, tmp_path / "m")
    loaded = load_pretrained(folder)
    # The class order survives config.json (written with sorted keys): same answers as before.
    assert loaded.vocab == Vocabulary.current()
    assert loaded.vocab.answers == Vocabulary.current().answers
    seeded = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(64, 32, generator=seeded), dim=-1)
    bank = Vocabulary.current().bank
    questions, families = [q for _, q in bank][:64], [f for f, _ in bank][:64]
    assert loaded.answer(z[:len(questions)], questions, families) == model.eval().answer(
        z[:len(questions)], questions, families)

    def rename(meta):
        voc = meta["vocabulary"]
        families = dict(voc["families"])
        families["torso_lean"] = ["ahead", "upright", "backward"]
        voc["families"] = [[f, a] for f, a in families.items()]
        voc["answers"] = list(dict.fromkeys(a for _, v in voc["families"] for a in v))
        for family, question in voc["question_bank"]:
            if family == "torso_lean":
                voc["sentences"][question]["ahead"] = voc["sentences"][question].pop("forward")

    _edit_config(folder, rename)
    renamed = load_pretrained(folder)
    assert "ahead" in renamed.vocab.answers and renamed.vocab != Vocabulary.current()
    z = torch.nn.functional.normalize(torch.randn(8, 32), dim=-1)
    got = renamed.answer(z, ["Is the person leaning forward or backward?"] * 8, ["torso_lean"] * 8)
    assert set(got) <= {"ahead", "upright", "backward"}
    with pytest.raises(ValueError, match="another answer vocabulary"):
        Student(preset("tiny", 32)).adopt_language(renamed)


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.pop("vocabulary"), "answer vocabulary is incomplete"),
    (lambda m: m["vocabulary"].update(families=[f for f in m["vocabulary"]["families"]
                                                 if f[0] != "facing"]),
     "answer classes do not follow"),
    (lambda m: m["vocabulary"]["answers"].reverse(), "answer classes do not follow"),
    (lambda m: m["inputs"].update(keypoint_layout="coco17"), "inputs.keypoint_layout"),
    (lambda m: m["inputs"]["render"].update(image_size=99), "inputs.render"),
    (lambda m: m["inputs"].update(keypoint_features=m["inputs"]["keypoint_features"] - 1),
     "inputs.keypoint_features is .*; this code feeds a model"),
    (lambda m: m.pop("inputs"), "no 'inputs' section"),
])
def test_a_damaged_vocabulary_or_input_contract_is_named(tmp_path, change, message):
    folder = save_pretrained(Student(preset("tiny", 32)), tmp_path / "m")
    _edit_config(folder, change)
    with pytest.raises(ValueError, match=message):
        load_pretrained(folder)
