"""An archive of photos and videos captioned into Parquet: what a caption run's output holds and
how a re-run knows what is done.

Layout of an output folder (local or ``s3://``)::

    run.json                 the model (path and fingerprint), questions, video stride
    parts/part-<id>.parquet  rows of one group of input files, written whole or not at all
    summary.json             counts per outcome, the slowest files, timings (each run's end)

Exactly once: every input file yields at least one row (a person, "no person found", or an
error), and the files of one group land in one part written atomically (a temporary name, then
a rename; an S3 object appears only once complete). A part's id is a hash of its files, so a
retried group overwrites its own part. A re-run reads the ``source`` column of the parts and
captions only the files no part holds: nothing is duplicated or lost, even after ``kill -9``.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from p2l3d_core import storage
from p2l3d_core.inference.images import IMAGE_SUFFIXES
from p2l3d_core.inference.video import VIDEO_SUFFIXES

RUN_FORMAT = "p2l3d-captions/1"
ANSWER_TYPE = pa.struct([
    ("question", pa.string()), ("matched_question", pa.string()), ("family", pa.string()),
    ("answer", pa.string()), ("sentence", pa.string()), ("free_form", pa.bool_()),
    ("similarity", pa.float32())])
SCHEMA = pa.schema([
    ("source", pa.string()), ("frame", pa.int32()), ("person", pa.int32()),
    ("bbox", pa.list_(pa.float32(), 4)), ("keypoints", pa.list_(pa.list_(pa.float32(), 3))),
    ("score", pa.float32()), ("caption", pa.string()), ("answers", pa.list_(ANSWER_TYPE)),
    ("error", pa.string()), ("model", pa.string())])


def kind_of(uri: str) -> str | None:
    """``photo``, ``video`` or None (neither) by the file name's suffix."""
    suffix = posixpath.splitext(uri.lower())[1]
    return "photo" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def list_inputs(uri: str) -> list[str]:
    """Every file under ``uri`` (a folder or one file, local or ``s3://``), recursively, sorted.
    Files that are neither photos nor videos are listed too: each gets an error row."""
    fs, path = storage.resolve(uri)
    info = fs.get_file_info(path)
    prefix = "s3://" if storage.is_s3(uri) else ""
    if info.type == pafs.FileType.File:
        return [prefix + info.path]
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"input {uri} does not exist")
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    files = sorted(prefix + i.path for i in infos if i.type == pafs.FileType.File
                   and not posixpath.basename(i.path).startswith("."))
    if not files:
        raise FileNotFoundError(f"input {uri} holds no files: nothing to caption")
    return files


def model_fingerprint(model_uri: str) -> str:
    """A short hash of the model folder's ``config.json`` and weights: rows say which model
    wrote them, and a re-run with another model is caught."""
    digest = hashlib.sha256(storage.read_bytes(storage.join(model_uri, "config.json")))
    digest.update(storage.read_bytes(storage.join(model_uri, "model.safetensors")))
    return digest.hexdigest()[:16]


def part_id(sources: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(sources)).encode()).hexdigest()[:20]


def part_uri(output: str, sources: list[str]) -> str:
    return storage.join(output, "parts", f"part-{part_id(sources)}.parquet")


def write_part(output: str, sources: list[str], rows: list[dict]) -> str:
    """The rows of one group of files, as one Parquet file written whole or not at all."""
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    uri = part_uri(output, sources)
    storage.write_bytes(uri, buffer.getvalue())
    return uri


def read_rows(output: str, columns: list[str] | None = None) -> pa.Table:
    """Every row of the parts of ``output`` (an empty table if none)."""
    tables = [pq.read_table(io.BytesIO(storage.read_bytes(uri)), columns=columns)
              for uri in storage.list_files(storage.join(output, "parts"))
              if uri.endswith(".parquet")]
    if not tables:
        return SCHEMA.empty_table() if columns is None else pa.schema(
            [SCHEMA.field(c) for c in columns]).empty_table()
    return pa.concat_tables(tables)


def done_sources(output: str) -> set[str]:
    """The input files whose rows are complete (held by a written part)."""
    return set(read_rows(output, ["source"]).column("source").to_pylist())


def run_settings(model: str, fingerprint: str, questions: list[str], video_stride: int) -> dict:
    return {"format": RUN_FORMAT, "model": model, "model_fingerprint": fingerprint,
            "questions": list(questions), "video_stride": video_stride}


def settings_clash(output: str, settings: dict) -> str | None:
    """Why ``output`` holds rows of another model, other questions or another stride, or None
    (no run there yet, or the same settings)."""
    uri = storage.join(output, "run.json")
    if not storage.exists(uri):
        return None
    try:
        held = storage.read_json(uri)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"{uri} is damaged"
    for key, label in (("model_fingerprint", "model"), ("questions", "set of questions"),
                       ("video_stride", "video stride")):
        if held.get(key) != settings[key]:
            return (f"{output} holds rows of another {label} ({held.get(key)!r}, now "
                    f"{settings[key]!r})")
    return None
