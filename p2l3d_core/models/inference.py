"""A trained model made ready to answer: eval mode, batch norm folded into its convolutions,
image encoders frozen into TorchScript graphs.

Why: at batch 1 on a CPU the small ResNet image encoder is bound by per-operation overhead,
not arithmetic. In eval mode a batch norm is a fixed per-channel affine map, which the
preceding convolution can absorb exactly (to float rounding). What overhead is left is the
Python of every module call (transformers' ResNet wraps each stage and builds output objects);
a traced, frozen graph runs the same operations without it, and TorchScript's freezing fuses
convolutions with the activations that follow. Training must not use such a model: the batch
norm is gone and the frozen graph holds its weights as constants, so neither could learn, and
``save_pretrained`` refuses it.
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
            and isinstance(m.convolution, nn.Conv2d) and isinstance(m.normalization, nn.BatchNorm2d)]


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


def _frozen_graph(encoder: nn.Module, image_size: int) -> torch.jit.ScriptModule | None:
    """``encoder`` traced on a random batch and frozen, or None (with a warning) if tracing
    fails or the graph's embeddings of another batch size differ from the module's: a backbone
    with data-dependent control flow stays in Python rather than answering wrongly."""
    device = next(encoder.parameters()).device
    probe = torch.Generator().manual_seed(0)
    example = torch.rand(2, 3, image_size, image_size, generator=probe).mul(2).sub(1).to(device)
    check = torch.rand(3, 3, image_size, image_size, generator=probe).mul(2).sub(1).to(device)
    library_log = logging.getLogger("transformers")  # tracing reads every attribute: quiet
    level = library_log.level                           # its deprecation notices meanwhile
    try:
        library_log.setLevel(logging.ERROR)
        with torch.no_grad(), warnings.catch_warnings():
            # (transformers' ResNet checks the channel count in Python: constant once traced)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", FutureWarning)
            graph = torch.jit.freeze(torch.jit.trace(encoder.eval(), example, check_trace=False))
            difference = float((graph(check) - encoder(check)).abs().max())
    except (RuntimeError, TypeError, ValueError) as err:
        LOG.warning("image encoder %s kept in Python: tracing failed (%s)", type(encoder.backbone).__name__, err)
        return None
    finally:
        library_log.setLevel(level)
    if not difference <= TRACE_TOLERANCE:
        LOG.warning("image encoder %s kept in Python: its traced graph differs by %.3g",
                    type(encoder.backbone).__name__, difference)
        return None
    return graph


def freeze_image_encoders(model: nn.Module, image_size: int) -> int:
    """Replace each pose branch's image encoder with its frozen TorchScript graph, in place
    (inputs of any batch size, ``image_size`` pixels square); returns how many were replaced."""
    from p2l3d_core.models.encoders import ImageEncoder, PoseEncoder

    count = 0
    for branch in [m for m in model.modules() if isinstance(m, PoseEncoder)]:
        if isinstance(branch.image, ImageEncoder):
            graph = _frozen_graph(branch.image, image_size)
            if graph is not None:
                branch.image = graph
                count += 1
    return count


def for_inference(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with its batch norms folded (:func:`fold_batch_norm`), its image
    encoders frozen (:func:`freeze_image_encoders`, at the model's ``cfg.vision.image_size``)
    and no gradients kept: what evaluation and the benchmarks run. Marked
    ``prepared_for_inference``; it cannot be trained or saved."""
    fold_batch_norm(model)
    model.requires_grad_(False)
    cfg = getattr(model, "cfg", None)
    if cfg is not None:
        freeze_image_encoders(model, cfg.vision.image_size)
    model.prepared_for_inference = True
    return model
