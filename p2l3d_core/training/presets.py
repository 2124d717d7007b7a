"""Named scales of the whole pipeline (render -> teacher -> student -> baselines -> evaluate),
kept as YAML files in ``p2l3d_core/configs/presets/``, one a preset, as open_clip keeps its
model configs: ``smoke`` (seconds; the tests), ``quickstart`` (the whole system in minutes on
2 CPU cores), ``study`` (the full comparison: hours there) and ``paper`` (the paper's scale, for
a GPU cluster). A user's own file works the same way (``--preset my.yaml``).

A preset file holds :class:`PipelinePreset`'s top-level fields and three sections, each read
into the dataclass that owns those fields' defaults and checks, so that each has one source:
``dataset`` (:class:`DatasetConfig`), ``train`` (:class:`TrainConfig`: what every training of
the run shares) and ``evaluate`` (:class:`EvalSettings`). Command-line flags override single
fields; :data:`OVERRIDES` lists them once for every job.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from p2l3d_core.config import DatasetConfig, EvalSettings
from p2l3d_core.training.config import (
    LR_SCHEDULES,
    ZERO_STAGES,
    TrainConfig,
    check_at_least,
    check_fraction,
)

PRESET_DIR = Path(__file__).resolve().parents[1] / "configs" / "presets"
BASELINES = ("baseline_2d", "baseline_2d_no3d", "coords_2d")
MODEL_SIZES = ("tiny", "small", "base")  # p2l3d_core.models.config.preset
POSE_INPUTS = ("image", "keypoints", "image+keypoints")  # p2l3d_core.models.encoders
PLACEMENTS = ("pack", "spread")  # Ray Train's placement-group strategies, lower-cased
# Fields the run plan or the job sets itself, which a preset's sections may not hold.
NOT_IN_SECTIONS = {
    "dataset": {"seed": "--seed", "source": "the job (synthetic poses; --real for real sets)"},
    "train": {name: "the run plan (p2l3d_core/training/plan.py)" for name in (
        "model", "epochs", "seed", "teacher_path", "language", "total_steps", "text_features")},
    "evaluate": {},
}
SECTIONS = {"dataset": DatasetConfig, "train": TrainConfig, "evaluate": EvalSettings}


@dataclass(frozen=True)
class PipelinePreset:
    """One scale of the pipeline. The per-training settings live in ``train``; the fields here
    say which models the run trains and for how long."""

    name: str
    teacher_epochs: int
    student_epochs: int
    # The labelled-only models (the baselines) see ~1/labelled_fraction fewer rows an epoch than
    # the distilled student, so they train their own number of epochs; every model exports its
    # best validation epoch.
    baseline_epochs: int
    model: str = "small"  # a model size: MODEL_SIZES
    description: str = ""
    num_workers: int = 2
    # Where Ray Train places the workers: "pack" fills a node first (GPU workers beside each
    # other), "spread" puts them on as many nodes as it can (CPU clusters: each node's cores
    # and memory bandwidth).
    placement: str = "pack"
    seeds: int = 1  # student and baseline_2d are trained this many times
    baselines: tuple[str, ...] = BASELINES  # which labelled-only models the run trains
    curve: tuple[float, ...] = ()  # labelled fractions of the learning curve (each: 3 models)
    pose_input: str = "image+keypoints"  # the teacher's 2D branch, and the student's by default
    pose_input_3d: str = "image+keypoints"  # the teacher's 3D branch
    # What the student and its own-architecture baselines read, when not ``pose_input``:
    # "keypoints" distils the image teacher into a keypoint network (baseline_2d is then the
    # same network as coords_2d, which is not trained twice).
    student_pose_input: str | None = None
    # Teacher and student answer with the pose's geometry beside the embedding (the student
    # regresses it from 2D against the teacher's 3D): models/geometry.py. Needs keypoints in
    # pose_input, student_pose_input and pose_input_3d.
    geometry: bool = True
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvalSettings = field(default_factory=EvalSettings)

    def __post_init__(self) -> None:
        check_at_least(self, ("teacher_epochs", "student_epochs", "baseline_epochs",
                              "num_workers", "seeds"), 1)
        for fraction in self.curve:
            check_fraction("each learning-curve fraction", fraction)
        _check_choice("model", self.model, MODEL_SIZES)
        _check_choice("placement", self.placement, PLACEMENTS)
        for name in ("pose_input", "pose_input_3d", "student_pose_input"):
            if getattr(self, name) is not None:
                _check_choice(name, getattr(self, name), POSE_INPUTS)
        for baseline in self.baselines:
            _check_choice("each of baselines", baseline, BASELINES)
        if self.geometry:
            for name in ("pose_input", "pose_input_3d", "student_pose_input"):
                value = getattr(self, name)
                if value is not None and "keypoints" not in value.split("+"):
                    raise ValueError(f"geometry needs keypoints in {name} (it is {value!r}): "
                                     "set geometry: false, or read keypoints")

    @property
    def student_input(self) -> str:
        """What the student reads: ``student_pose_input``, else the teacher's ``pose_input``."""
        return self.student_pose_input or self.pose_input

    def to_dict(self) -> dict:
        """JSON-ready, in the layout of the preset file (the training report keeps it)."""
        return dataclasses.asdict(self)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def preset_names() -> list[str]:
    """The presets shipped with the package (file names without ``.yaml``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name_or_path: str) -> Path:
    """A shipped preset's file, or a user's own ``.yaml``/``.yml``/``.json`` file."""
    if name_or_path in preset_names():
        return PRESET_DIR / f"{name_or_path}.yaml"
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml", ".json"):
        if not path.is_file():
            raise ValueError(f"preset file {name_or_path} does not exist")
        return path
    raise ValueError(f"unknown preset {name_or_path!r}: choose from {', '.join(preset_names())}, "
                     f"or give a .yaml file")


def load_preset(name_or_path: str, **overrides: object) -> PipelinePreset:
    """Read a preset file and apply ``overrides`` (flat field names, as :data:`OVERRIDES` and
    the top-level fields spell them; None values are skipped). Every field is checked by the
    dataclass that owns it; an error names the file and the field."""
    path = preset_path(name_or_path)
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        # ValueError, as for every other fault of a preset: the jobs report those as usage errors.
        raise ValueError(  # noqa: TRY004
            f"preset {path}: expected a mapping of fields, got {type(raw).__name__}")
    top = {f.name for f in dataclasses.fields(PipelinePreset)} - {"name", *SECTIONS}
    unknown = set(raw) - top - set(SECTIONS)
    if unknown:
        raise ValueError(f"preset {path}: unknown field(s) {', '.join(sorted(unknown))} "
                         f"(fields: {', '.join(sorted(top | set(SECTIONS)))})")
    sections = {name: _section(path, name, raw.get(name)) for name in SECTIONS}
    fields = {k: v for k, v in raw.items() if k not in SECTIONS}
    for key, value in overrides.items():
        if value is None:
            continue
        section = _SECTION_OF.get(key)
        if section is None and key not in top:
            raise ValueError(f"unknown preset field {key!r}")
        (sections[section] if section else fields)[key] = value
    try:
        fields = {k: _typed(PipelinePreset, k, v) for k, v in fields.items()}
        sections = {name: {k: _typed(SECTIONS[name], k, v, name) for k, v in values.items()}
                    for name, values in sections.items()}
    except ValueError as err:
        raise ValueError(f"preset {path}: {err}") from None
    try:
        built = {name: cls(**sections[name]) for name, cls in SECTIONS.items()}
        return PipelinePreset(name=path.stem, **fields, **built)
    except TypeError as err:  # a value of the wrong kind, e.g. a list where a number goes
        raise ValueError(f"preset {path}: {err}") from None


def _field_kind(owner: type, name: str) -> tuple[object, object, bool]:
    """The type of ``owner``'s field ``name`` as ``(kind, item, optional)``: ``int | None`` is
    ``(int, None, True)``, ``tuple[float, ...]`` is ``(tuple, float, False)``; a field without a
    type hint is ``(object, None, True)``. The loader's checks and the flags' types read it."""
    hint = typing.get_type_hints(owner).get(name)
    if hint is None:
        return object, None, True
    optional = type(None) in typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    kind = typing.get_origin(hint) or hint
    args = typing.get_args(hint)
    return kind, (args[0] if kind is tuple and args else None), optional


def _typed(owner: type, name: str, value: object, section: str | None = None) -> object:
    """``value`` checked against the type of ``owner``'s field ``name`` (YAML reads ``1e-3``
    as a string, ``8000.0`` as a float): whole numbers for ints, numbers (or numeric text) for
    floats, lists for tuples. Nested configs and unknown types pass as they are."""
    label = f"{section}.{name}" if section else name
    kind, item, optional = _field_kind(owner, name)
    if value is None:
        if optional:
            return None
        raise ValueError(f"{label} may not be empty")
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{label} must be true or false, got {value!r}")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{label} must be a whole number, got {value!r}")
    elif kind is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{label} must be a number, got {value!r}")
        return float(value)
    elif kind is str:
        if not isinstance(value, str):
            raise ValueError(f"{label} must be text, got {value!r}")
    elif kind is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{label} must be a list, got {value!r}")
        return tuple(_typed_item(label, item, v) for v in value)
    return value


def _typed_item(label: str, item: type, value: object) -> object:
    if item is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if item is str and isinstance(value, str):
        return value
    if item in (float, str):
        raise ValueError(f"each of {label} must be {'a number' if item is float else 'text'}, "
                         f"got {value!r}")
    return value


def _section(path: Path, name: str, value: object) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"preset {path}: {name} must be a mapping, got {value!r}")  # noqa: TRY004
    owned = {f.name for f in dataclasses.fields(SECTIONS[name])}
    for key in value:
        if key in NOT_IN_SECTIONS[name]:
            raise ValueError(f"preset {path}: {name}.{key} is set by {NOT_IN_SECTIONS[name][key]}, "
                             "not by a preset")
        if key not in owned:
            raise ValueError(f"preset {path}: unknown field {name}.{key} (fields of "
                             f"{SECTIONS[name].__name__}: {', '.join(sorted(owned))})")
    return dict(value)


@dataclass(frozen=True)
class Override:
    """A command-line flag that overrides one preset field (``--field-name``)."""

    field: str
    section: str | None  # None: a top-level field of PipelinePreset
    help: str
    choices: tuple | None = None


OVERRIDES: tuple[Override, ...] = (
    Override("num_poses", "dataset", "poses to render"),
    Override("image_size", "dataset", "side of the rendered skeleton images, px"),
    Override("model", None, "model size", MODEL_SIZES),
    Override("pose_input", None, "what the teacher's 2D branch reads", POSE_INPUTS),
    Override("pose_input_3d", None, "what the teacher's 3D branch reads: the rendered 3D views "
             "and/or the 3D joints", POSE_INPUTS),
    Override("student_pose_input", None, "what the student (and baseline_2d, baseline_2d_no3d) "
             "reads; default the teacher's. 'keypoints': a keypoint network distilled from the "
             "image teacher", POSE_INPUTS),
    Override("geometry", None, "teacher and student answer with the pose's geometry (bends, "
             "lean, heights, feet distance, front/back offsets) beside the embedding; the "
             "student regresses it from 2D"),
    Override("teacher_epochs", None, "epochs of the teacher"),
    Override("student_epochs", None, "epochs of each distilled student"),
    Override("baseline_epochs", None, "epochs of the labelled-only baselines (they see fewer "
             "rows an epoch)"),
    Override("seeds", None, "how many seeds student and baseline_2d are trained with"),
    Override("num_workers", None, "Ray Train workers of each training"),
    Override("placement", None, "where the workers go: pack (fill a node first) or spread "
             "(across the cluster's nodes)", PLACEMENTS),
    Override("batch_size", "train", "rows per worker and step"),
    Override("grad_accum", "train", "steps accumulated per optimizer step"),
    Override("lr", "train", "learning rate"),
    Override("lr_schedule", "train", "learning rate over a training: constant, or cosine (5%% "
             "linear warm-up, then annealed to 1%% of the rate by the last step)", LR_SCHEDULES),
    Override("labelled_fraction", "train", "share of the training split with language; the rest "
             "is the unlabelled pool"),
    Override("zero_stage", "train", "DeepSpeed ZeRO stage; stage 3 is not supported (why: "
             "p2l3d_core/training/config.py)", ZERO_STAGES),
    Override("use_gpu", "train", "one GPU per worker, bf16"),
    Override("match_weight", "train", "distilled student: weight of the cosine match to the "
             "teacher's fused embedding"),
    Override("rkd_weight", "train", "distilled student: weight of relational KD over the batch's "
             "texts"),
    Override("answer_kd_weight", "train", "distilled student: weight of the teacher's answer "
             "distributions on every row"),
    Override("pool_captions", "train", "distilled student: unlabelled rows of each batch that "
             "also learn the teacher's greedy caption of the pose"),
    Override("eval_poses", "evaluate", "test poses scored per method"),
)
_SECTION_OF = {o.field: o.section for o in OVERRIDES if o.section}


def _field_type(o: Override) -> type:
    """What argparse parses the flag's text as: the field's own type, or text."""
    kind, _, _ = _field_kind(SECTIONS[o.section] if o.section else PipelinePreset, o.field)
    return kind if kind in (int, float, str, bool) else str


def add_preset_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                         names: list[str] | None = None, rename: dict[str, str] | None = None,
                         default: str = "quickstart") -> None:
    """``--preset`` and the override flags ``names`` (default: all of :data:`OVERRIDES`); each
    defaults to None, meaning the preset's value. ``rename`` maps a field to another flag name
    (the teacher job's ``--epochs`` is ``teacher_epochs``)."""
    parser.add_argument("--preset", default=default, metavar="NAME|FILE",
                        help=f"scale of the run: {', '.join(preset_names())} (files in "
                             f"p2l3d_core/configs/presets/), or a .yaml file of your own "
                             f"(default {default})")
    rename = rename or {}
    for o in OVERRIDES:
        if names is not None and o.field not in names:
            continue
        flag = "--" + rename.get(o.field, o.field).replace("_", "-")
        kind = _field_type(o)
        if kind is bool:
            parser.add_argument(flag, dest=o.field, action=argparse.BooleanOptionalAction,
                                default=None, help=f"{o.help} (default: the preset's)")
        else:
            parser.add_argument(flag, dest=o.field, type=kind, default=None, choices=o.choices,
                                help=f"{o.help} (default: the preset's)")


def preset_from_args(args: argparse.Namespace) -> PipelinePreset:
    """The preset ``args.preset`` with every override flag the user gave."""
    given = {o.field: getattr(args, o.field) for o in OVERRIDES if hasattr(args, o.field)}
    return load_preset(args.preset, **given)
