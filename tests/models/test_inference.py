"""Folding batch norm for inference: same outputs, fewer operations, other backbones untouched."""

import numpy as np
import torch
from torch import nn

from p2l3d_core.models import Student
from p2l3d_core.models.config import preset
from p2l3d_core.models.encoders import images_to_tensor
from p2l3d_core.models.inference import fold_batch_norm, for_inference


def _images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return images_to_tensor(np.random.default_rng(seed).integers(0, 255, (n, size, size, 3), dtype=np.uint8))


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
            model.encoder_2d({"image": _images(8, seed=seed) * 3 + 0.5})
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


def test_for_inference_leaves_a_vit_alone_and_freezes_gradients():
    model = Student(preset("tiny", image_size=32))
    assert fold_batch_norm(model) == 0
    model = for_inference(model)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
