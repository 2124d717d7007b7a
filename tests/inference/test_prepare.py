"""Preparing a model for inference: batch norm folded and image encoders frozen into graphs,
same outputs; a model so prepared is never saved."""

import logging

import numpy as np
import pytest
import torch
from torch import nn

from p2l3d_core.inference.prepare import fold_batch_norm, for_inference, freeze_pose_encoders
from p2l3d_core.models import Student, Teacher
from p2l3d_core.models.config import preset
from p2l3d_core.models.encoders import ImageEncoder, PoseEncoder
from p2l3d_core.models.inputs import images_to_tensor
from p2l3d_core.models.io import save_pretrained
from p2l3d_core.models.keypoints import KEYPOINT_FEATURES, KEYPOINT_FEATURES_3D


def _images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return images_to_tensor(np.random.default_rng(seed).integers(0, 255, (n, size, size, 3),
                                                                 dtype=np.uint8))


def _trained_statistics(model: Student) -> Student:
    """Batch norms with running statistics and affine weights far from their initial values,
    so folding has something to get wrong."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
        model.train()
        for seed in range(3):
            inputs = {"image": _images(8, seed=seed) * 3 + 0.5,
                      "keypoints": torch.randn(8, KEYPOINT_FEATURES)}
            model.encoder_2d({k: inputs[k] for k in model.encoder_2d.uses})
    return model.eval()


def test_folding_keeps_the_resnet_embedding_and_removes_every_batch_norm():
    model = _trained_statistics(Student(preset("small", image_size=32)))
    x = _images(4, seed=7)
    with torch.no_grad():
        before = model.encode_pose({"image": x})
    folded = fold_batch_norm(model)
    assert folded == 12  # stem, 2 per basic block (4 stages), 3 strided shortcuts
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        after = model.encode_pose({"image": x})
    assert torch.allclose(before, after, atol=1e-5), float((before - after).abs().max())


def test_for_inference_folds_no_vit_norm_but_freezes_its_graph_and_its_gradients():
    model = Student(preset("tiny", image_size=32)).eval()
    x = _images(3, seed=1)
    with torch.no_grad():
        before = model.encode_pose({"image": x})
    assert fold_batch_norm(model) == 0
    model = for_inference(model)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert isinstance(model.encoder_2d, torch.jit.ScriptModule)
    with torch.no_grad():
        assert torch.allclose(model.encode_pose({"image": x}), before, atol=1e-5)


def test_frozen_pose_graphs_give_the_trained_embeddings_at_any_batch_size():
    """Image and keypoints through one graph each branch: a student's, and a teacher's 2D and
    3D branches (3D keypoints are wider)."""
    student = _trained_statistics(Student(preset("small", image_size=32,
                                                 pose_input="image+keypoints")))
    teacher = Teacher(preset("small", image_size=32, pose_input="image+keypoints",
                             pose_input_3d="image+keypoints")).eval()
    rng = torch.Generator().manual_seed(0)
    cases = [(n,
              {"image": _images(n, seed=n),
               "keypoints": torch.randn(n, KEYPOINT_FEATURES, generator=rng)},
              {"image": _images(n, seed=n + 1),
               "keypoints": torch.randn(n, KEYPOINT_FEATURES_3D, generator=rng)})
             for n in (1, 5, 64)]
    with torch.no_grad():
        before = [(student.encode_pose(x2), teacher.encode_pose(x2, x3)) for _, x2, x3 in cases]
    for model in (student, teacher):
        for_inference(model)
        assert isinstance(model.encoder_2d, torch.jit.ScriptModule)
    assert isinstance(teacher.encoder_3d, torch.jit.ScriptModule)
    with torch.no_grad():
        for (n, x2, x3), (s, t) in zip(cases, before):
            for got, want in ((student.encode_pose(x2), s), (teacher.encode_pose(x2, x3), t)):
                assert torch.allclose(got, want, atol=1e-5), (n, float((got - want).abs().max()))


class _BranchesOnBatchSize(ImageEncoder):
    """An encoder with a Python branch on its input's batch size: a trace records the branch
    of its example batch only, so the graph must be found wrong on a batch of another size and
    not used (a trace specialised to the shapes it saw is the likely way to go wrong)."""

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        z = super().forward(pixels)
        return z if pixels.shape[0] % 2 else -z


def test_an_encoder_that_does_not_trace_faithfully_stays_in_python_with_a_warning(caplog):
    model = Student(preset("small", image_size=32)).eval()
    odd = _BranchesOnBatchSize(model.cfg.vision, model.cfg.embed_dim)
    odd.load_state_dict(model.encoder_2d.image.state_dict())
    model.encoder_2d.image = odd.eval()
    with caplog.at_level(logging.WARNING, logger="p2l3d_core.inference.prepare"):
        assert freeze_pose_encoders(model, 32) == 0
    assert isinstance(model.encoder_2d, PoseEncoder) and model.encoder_2d.image is odd
    assert "kept in Python" in caplog.text and "differs" in caplog.text
    with torch.no_grad():
        for x in (_images(2, seed=3), _images(3, seed=4)):
            assert torch.allclose(model.encode_pose({"image": x}), odd(x))


def test_a_model_prepared_for_inference_is_not_saved(tmp_path):
    model = for_inference(Student(preset("small", image_size=32)))
    with pytest.raises(ValueError, match="prepared for inference"):
        save_pretrained(model, tmp_path / "student")
    assert not (tmp_path / "student").exists()


def _graph_weights(graph: torch.jit.ScriptModule) -> list[torch.Tensor]:
    """The 4-D tensors a frozen graph holds as constants: its convolution weights."""
    return [node.output().toIValue() for node in graph.graph.findAllNodes("prim::Constant")
            if node.output().type().kind() == "TensorType"
            and node.output().toIValue() is not None and node.output().toIValue().dim() == 4]


def test_frozen_image_graphs_hold_channels_last_convolution_weights():
    """The default layout's convolutions copy their input at batch 1 on one thread; the frozen
    graph's weights are channels-last and the embeddings are unchanged (checked above)."""
    model = for_inference(_trained_statistics(Student(preset("small", image_size=32))))
    weights = _graph_weights(model.encoder_2d)
    assert len(weights) == 12
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)


def test_a_prepared_model_keeps_each_sentence_embedding_once_computed():
    sentences = ["is the left hand in front of the torso?", "the person is walking.",
                 "is the left hand in front of the torso?"]
    trained = Student(preset("tiny", image_size=32)).eval()
    with torch.no_grad():
        want = trained.text(sentences)
    assert trained.text.embedding_cache is None  # a model that may train keeps none
    prepared = for_inference(trained)
    first, again = prepared.text(sentences), prepared.text(sentences[1:])
    assert len(prepared.text.embedding_cache) == 2
    assert torch.allclose(first, want, atol=1e-6)
    assert torch.equal(again, first[1:])
