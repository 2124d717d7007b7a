"""A trained model made ready to answer: eval mode, batch norm folded into its convolutions.

Why: at batch 1 on a CPU the small ResNet image encoder is bound by per-operation overhead,
not arithmetic, so removing an operation per convolution is most of what can be had without
compiling. In eval mode a batch norm is a fixed per-channel affine map, which the preceding
convolution can absorb exactly (to float rounding). Training must not use a folded model: the
batch norm is gone, so its statistics could no longer adapt.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


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


def for_inference(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with its batch norms folded (:func:`fold_batch_norm`), no
    gradients kept: what evaluation and the benchmarks run."""
    fold_batch_norm(model)
    return model.requires_grad_(False)
