"""A trained model made ready to answer: eval mode, batch norm folded into its convolutions,
pose encoders frozen into TorchScript graphs.

Why: at batch 1 on a CPU the small ResNet image encoder is bound by per-operation overhead,
not arithmetic. In eval mode a batch norm is a fixed per-channel affine map, which the
preceding convolution can absorb exactly (to float rounding). What overhead is left is the
Python of every module call (transformers' ResNet wraps each stage and builds output objects);
a traced, frozen graph runs the same operations without it, and TorchScript's freezing fuses
convolutions with the activations that follow. The graph's convolution weights are
channels-last: at batch 1 on one thread the default layout's convolutions copied their inputs
about 25 times a pose (~0.3 ms of a 1.2 ms image branch; ``benchmarks/answer_path.py`` times
the parts). Training must not use such a model: the batch norm is gone and the frozen graph
holds its weights as constants, so neither could learn, and ``save_pretrained`` refuses it.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

LOG = logging.getLogger(__name__)
TRACE_TOLERANCE = 1e-4  # on L2-normalised embeddings; float rounding is ~1e-7


def _conv_norm_layers(model: nn.Module) -> list[nn.Module]:
    """Modules of transformers' ResNet that apply ``self.convolution`` then
    ``self.normalization`` (``ResNetConvLayer``, ``ResNetShortCut``)."""
    from transformers.models.resnet.modeling_resnet import ResNetConvLayer, ResNetShortCut

    return [m for m in model.modules() if isinstance(m, (ResNetConvLayer, ResNetShortCut))
            and isinstance(m.convolution, nn.Conv2d)
            and isinstance(m.normalization, nn.BatchNorm2d)]


def fold_batch_norm(model: nn.Module) -> int:
    """Fold every ResNet convolution's batch norm into the convolution, in place (the model is
    put in eval mode first); returns how many were folded. Other backbones are left as they
    are (0)."""
    model.eval()
    layers = _conv_norm_layers(model)
    for layer in layers:
        layer.convolution = fuse_conv_bn_eval(layer.convolution, layer.normalization)
        layer.normalization = nn.Identity()
    return len(layers)


def _example_inputs(branch: nn.Module, batch: int, image_size: int,
                    seed: int) -> dict[str, torch.Tensor]:
    """Random inputs of every kind ``branch`` (a ``PoseEncoder``) reads, on its device."""
    device = next(branch.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    out = {}
    if branch.image is not None:
        out["image"] = torch.rand(batch, 3, image_size, image_size, generator=gen).mul(2).sub(1)
    if branch.keypoints is not None:
        out["keypoints"] = torch.randn(batch, branch.keypoints.mlp[0].in_features, generator=gen)
    return {k: v.to(device) for k, v in out.items()}


def _frozen_graph(branch: nn.Module, image_size: int) -> torch.jit.ScriptModule | None:
    """``branch`` traced on a random batch and frozen, or None (with a warning) if tracing
    fails or the graph's embeddings of a batch of another size differ from the module's: a
    backbone with data- or shape-dependent control flow stays in Python rather than answering
    wrongly."""
    example, check = (_example_inputs(branch, n, image_size, seed=n) for n in (2, 3))
    library_log = logging.getLogger("transformers")  # tracing reads every attribute: quiet
    level = library_log.level                           # its deprecation notices meanwhile
    try:
        library_log.setLevel(logging.ERROR)
        branch = branch.to(memory_format=torch.channels_last)  # the convolutions' weights
        with torch.no_grad(), warnings.catch_warnings():
            # (transformers' ResNet checks the channel count in Python: constant once traced)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", FutureWarning)
            graph = torch.jit.freeze(torch.jit.trace(branch.eval(), (example,), check_trace=False))
            difference = float((graph(check) - branch(check)).abs().max())
    except (RuntimeError, TypeError, ValueError) as err:
        LOG.warning("pose encoder reading %s kept in Python: tracing failed (%s)",
                    "+".join(branch.uses), err)
        return None
    finally:
        library_log.setLevel(level)
    if not difference <= TRACE_TOLERANCE:
        LOG.warning("pose encoder reading %s kept in Python: its traced graph differs by %.3g",
                    "+".join(branch.uses), difference)
        return None
    return graph


def freeze_pose_encoders(model: nn.Module, image_size: int) -> int:
    """Replace each pose branch (``PoseEncoder``: image and/or keypoint encoders, summed) with
    its frozen TorchScript graph, in place; the graph takes the same input dict, of any batch
    size, images ``image_size`` pixels square. Returns how many were replaced."""
    from p2l3d_core.models.encoders import PoseEncoder

    count = 0
    for name, branch in list(model.named_modules()):
        if isinstance(branch, PoseEncoder):
            graph = _frozen_graph(branch, image_size)
            if graph is not None:
                parent, _, attr = name.rpartition(".")
                setattr(model.get_submodule(parent), attr, graph)
                count += 1
    return count


def for_inference(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with its batch norms folded (:func:`fold_batch_norm`), its image
    branches frozen (:func:`freeze_pose_encoders`, at the model's ``cfg.vision.image_size``),
    each sentence's text embedding kept once computed (``TextEncoder.embedding_cache``) and no
    gradients kept: what evaluation and the benchmarks run. Marked ``prepared_for_inference``;
    it cannot be trained or saved."""
    from p2l3d_core.models.encoders import TextEncoder

    fold_batch_norm(model)
    model.requires_grad_(False)
    for module in model.modules():
        if isinstance(module, TextEncoder):
            module.embedding_cache = {}
    cfg = getattr(model, "cfg", None)
    if cfg is not None:
        freeze_pose_encoders(model, cfg.vision.image_size)
    model.prepared_for_inference = True
    return model
