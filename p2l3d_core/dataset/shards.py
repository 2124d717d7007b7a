"""Shard files and the manifest: how a rendered dataset lies on disk or in S3.

Layout under the dataset URI::

    _config.json                 config + fingerprint, written first (guards mixed re-runs)
    shards/part-00000.parquet    written atomically; a shard file exists only when complete
    manifest.json                written last: counts per split and action, shard list
                                 (rows, bytes, sha256, the Ray node that rendered it),
                                 failures, config, code version

Readers trust only the shards that ``manifest.json`` lists, so a job that died midway leaves
nothing a reader would use, and a re-run finishes the missing shards.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from p2l3d_core import storage
from p2l3d_core.dataset.schema import Column

FORMAT = "p2l3d-rendered/1"
FAILURES_KEY = b"p2l3d_failures"


def shard_name(index: int) -> str:
    return f"shards/part-{index:05d}.parquet"


def with_failures(table: pa.Table, failures: list[tuple[str, str]]) -> pa.Table:
    """``table`` carrying the poses that failed in its schema metadata (and so in its file)."""
    meta = dict(table.schema.metadata or {})
    meta[FAILURES_KEY] = json.dumps([{Column.POSE_ID: p, "reason": r}
                                     for p, r in failures]).encode()
    return table.replace_schema_metadata(meta)


def write_shard(dataset_uri: str, index: int, table: pa.Table) -> dict:
    """Write one shard atomically (failures already attached by :func:`with_failures`);
    returns its ``uri`` and the ``bytes`` and ``sha256`` the manifest records."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    uri = storage.join(dataset_uri, shard_name(index))
    data = buf.getvalue()
    storage.write_bytes(uri, data)
    return {"uri": uri, **fingerprint(data)}


def fingerprint(data: bytes) -> dict:
    """What the manifest records of a shard's file: its size and sha256."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def shard_stats(table: pa.Table) -> dict:
    """Row counts per split and action, and failures, of one shard's table."""
    meta = table.schema.metadata or {}
    failures = json.loads(meta.get(FAILURES_KEY, b"[]"))
    return {
        "rows": table.num_rows,
        "splits": dict(Counter(table.column(Column.SPLIT).to_pylist())),
        "actions": dict(Counter(table.column(Column.ACTION).to_pylist())),
        "failures": failures,
    }


def read_shard_stats(dataset_uri: str, index: int) -> dict:
    """Stats of a shard already on storage (reads only the two small columns)."""
    data = storage.read_bytes(storage.join(dataset_uri, shard_name(index)))
    stats = shard_stats(pq.read_table(io.BytesIO(data), columns=[Column.SPLIT, Column.ACTION]))
    return {**stats, **fingerprint(data)}


def completed_shards(dataset_uri: str) -> set[int]:
    """Indices of complete shard files; stale temporary files of a killed run are removed."""
    done = set()
    for uri in storage.list_files(storage.join(dataset_uri, "shards")):
        name = uri.rsplit("/", 1)[-1]
        if storage.TMP_MARKER in name:
            storage.delete(uri)
        elif name.startswith("part-") and name.endswith(".parquet"):
            done.add(int(name[len("part-"):-len(".parquet")]))
    return done


def merge_stats(per_shard: dict[int, dict]) -> dict:
    splits, actions = Counter(), Counter()
    failures: list = []
    for stats in per_shard.values():
        splits.update(stats["splits"])
        actions.update(stats["actions"])
        failures.extend(stats["failures"])
    return {"num_rows": sum(splits.values()), "splits": dict(splits), "actions": dict(actions),
            "failures": failures}


def read_manifest(dataset_uri: str) -> dict:
    """The manifest of a complete dataset; raises ``FileNotFoundError`` naming the URI if the
    dataset is absent or was never finished."""
    uri = storage.join(dataset_uri, "manifest.json")
    if not storage.exists(uri):
        raise FileNotFoundError(f"no manifest.json under {dataset_uri}: not a rendered dataset, "
                                "or its job has not finished (re-run it to complete)")
    manifest = storage.read_json(uri)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{uri} has format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


SHARD_PATH = re.compile(r"shards/part-\d{5}\.parquet")


def shard_entries(dataset_uri: str) -> list[tuple[str, dict]]:
    """``(uri, manifest entry)`` of every shard a complete dataset lists. A listed path must be
    a plain shard name inside the dataset: ``../`` or an absolute path would read files outside
    it (and for an ``s3://`` dataset, local files)."""
    out = []
    for entry in read_manifest(dataset_uri)["shards"]:
        path = str(entry.get("path", ""))
        if not SHARD_PATH.fullmatch(path):
            raise ValueError(f"{storage.join(dataset_uri, 'manifest.json')} lists shard {path!r}, "
                             "which is not a shard of this dataset (shards/part-NNNNN.parquet)")
        out.append((storage.join(dataset_uri, path), entry))
    return out


def shard_uris(dataset_uri: str) -> list[str]:
    """URIs of the shards a complete dataset's manifest lists."""
    return [uri for uri, _ in shard_entries(dataset_uri)]


def damaged_shards(dataset_uri: str, hashes: bool = False) -> dict[str, str]:
    """Shards that are missing or not what the manifest recorded, with the reason: their size
    (a file listing, cheap), and with ``hashes`` their sha256 (a read of every shard).
    Manifests written before sizes were recorded are checked for presence only."""
    problems = {}
    for uri, entry in shard_entries(dataset_uri):
        fs, path = storage.resolve(uri)
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            problems[uri] = "missing"
        elif "bytes" in entry and info.size != entry["bytes"]:
            problems[uri] = f"{info.size} bytes, the manifest recorded {entry['bytes']}"
        elif hashes and "sha256" in entry:
            digest = hashlib.sha256(storage.read_bytes(uri)).hexdigest()
            if digest != entry["sha256"]:
                problems[uri] = (f"sha256 {digest[:12]}..., the manifest recorded "
                                 f"{entry['sha256'][:12]}...")
    return problems


def check_shards(dataset_uri: str, hashes: bool = True) -> None:
    """Refuse a dataset with a missing, resized or (with ``hashes``) changed shard, naming it,
    before Ray reads them.

    Why the sha256 by default: a shard whose bytes changed in place (a disk or copy fault, a
    partial overwrite) keeps its size. Parquet reads one byte flipped in a camera or image
    column as other values, without an error (the teacher trains on them and the job exits 0),
    and other damage fails inside a Ray Data read task, as a traceback that names no shard.
    The hash costs one read of the shards on the driver (quickstart's 8,000 poses, 13 MB:
    ~0.05 s locally; the paper preset's from S3: seconds, against hours of training)."""
    problems = damaged_shards(dataset_uri, hashes=hashes)
    if problems:
        uri, why = next(iter(problems.items()))
        raise ValueError(f"dataset {dataset_uri}: shard {uri} is damaged ({why})"
                         + (f", and {len(problems) - 1} more" if len(problems) > 1 else "")
                         + ": run jobs/render_dataset.py with the same arguments"
                         + (" and --verify" if why.startswith("sha256") else "")
                         + " to repair it")


def _read_shard(uri: str, entry: dict, columns: list[str] | None) -> pa.Table:
    """One shard, checked against its manifest entry (size, sha256, readable, row count). The
    sha256 of bytes already read is cheap, and a shard changed in place keeps its size: Parquet
    may read such a file without an error, as other numbers."""
    try:
        data = storage.read_bytes(uri)
    except (FileNotFoundError, OSError) as err:
        raise ValueError(f"shard {uri} cannot be read ({err}): run jobs/render_dataset.py with "
                         "the same arguments to repair the dataset") from None
    if "bytes" in entry and len(data) != entry["bytes"]:
        raise ValueError(f"shard {uri} is damaged ({len(data)} bytes, the manifest recorded "
                         f"{entry['bytes']}): run jobs/render_dataset.py with the same arguments "
                         "to repair the dataset")
    digest = hashlib.sha256(data).hexdigest() if "sha256" in entry else None
    if digest is not None and digest != entry["sha256"]:
        raise ValueError(f"shard {uri} is damaged (sha256 {digest[:12]}..., the manifest "
                         f"recorded {entry['sha256'][:12]}...): run "
                         "jobs/render_dataset.py with the same arguments and --verify to repair "
                         "the dataset")
    try:
        table = pq.read_table(io.BytesIO(data), columns=columns)
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"shard {uri} is not a readable Parquet file ({err})") from None
    if table.num_rows != entry.get("rows", table.num_rows):
        raise ValueError(f"shard {uri} holds {table.num_rows} rows, the manifest recorded "
                         f"{entry['rows']}")
    return table


def load_table(dataset_uri: str, split: str | None = None, columns: list[str] | None = None
               ) -> pa.Table:
    """The whole dataset (or one split) as one Arrow table: for tests, evaluation and small
    datasets; training reads the same shards with Ray Data."""
    if columns is not None and split is not None and Column.SPLIT not in columns:
        columns = [*columns, Column.SPLIT]
    tables = []
    for uri, entry in shard_entries(dataset_uri):
        table = _read_shard(uri, entry, columns)
        if split is not None:
            table = table.filter(pc.equal(table.column(Column.SPLIT), split))
        tables.append(table)
    return pa.concat_tables(tables)


def first_row(dataset_uri: str,
              columns: tuple[str, ...] = (Column.POSE_ID, Column.ACTION, Column.CAPTIONS,
                                          Column.QUESTIONS, Column.ANSWERS, Column.NEEDS_DEPTH)
              ) -> dict:
    """The first row of the first shard (text columns only): a cheap look at what is inside."""
    uri = shard_uris(dataset_uri)[0]
    table = pq.read_table(io.BytesIO(storage.read_bytes(uri)), columns=list(columns))
    return table.slice(0, 1).to_pylist()[0]


TRAINING_COLUMNS = [Column.POSE_ID, Column.SPLIT, Column.ACTION, Column.IMAGE_2D,
                    Column.IMAGE_3D, Column.KEYPOINTS_2D, Column.VISIBLE_2D, Column.KEYPOINTS_3D,
                    Column.CAMERA, Column.CAPTIONS, Column.QUESTIONS, Column.ANSWERS,
                    Column.QUESTION_FAMILIES]


def training_splits(dataset_uri: str, columns: list[str] | None = None) -> dict:
    """The train and val splits as Ray datasets ``{"train": ..., "val": ...}``, read from the
    shards the manifest lists (local or S3) once, into Ray's object store. Why materialized:
    every epoch of every training iterates the same rows, and a lazy dataset would list, read
    and filter all shards again each epoch and each validation (seconds an epoch locally, more
    from S3). The shards are read once for both splits and split with a vectorised filter
    (quickstart's 23,000 poses: ~5 s, against ~15 s reading once per split with a per-row
    Python filter). While they are built the object store holds every row and the two splits:
    about twice the dataset; Ray spills to disk beyond its store."""
    import ray.data
    from ray.data.expressions import col

    check_shards(dataset_uri)  # a missing, cut or changed shard is named here, not in Ray
    uris = shard_uris(dataset_uri)
    fs, _ = storage.resolve(uris[0])
    paths = [storage.resolve(u)[1] for u in uris]
    wanted = list(columns or TRAINING_COLUMNS)
    read = list(dict.fromkeys([*wanted, Column.POSE_ID, *IMAGE_COLUMNS]))  # what the checks need
    rows = (ray.data.read_parquet(paths, filesystem=fs, include_paths=True)
            .select_columns([*read, "path"]).materialize())
    # The rows read, per shard file, against the manifest's count (a shard swapped for another
    # of the same size passes the size check).
    counted: Counter = Counter()
    for row in rows.map_batches(_rows_per_shard, batch_format="pyarrow").iter_rows():
        counted[posixpath.basename(row["path"])] += row["rows"]
    for uri, entry in shard_entries(dataset_uri):
        got = counted[posixpath.basename(entry["path"])]
        if got != entry["rows"]:
            raise ValueError(f"dataset {dataset_uri}: shard {uri} holds {got} rows, the manifest "
                             f"recorded {entry['rows']}")
    # Every image decoded once, now: an undecodable one would otherwise fail a training step,
    # after Ray Train's retries, without saying which pose (~0.5 s for quickstart's 8,000).
    bad = rows.map_batches(_undecodable, batch_format="pyarrow").take(1)
    if bad:
        raise ValueError(f"dataset {dataset_uri}: the {bad[0]['column']} of pose "
                         f"{bad[0]['pose_id']} in shard {bad[0]['path']} cannot be decoded "
                         f"({bad[0]['reason']}): render the dataset again (--overwrite)")
    # The splits are built from the rows in the object store (no second read of the files);
    # only the splits stay once this returns.
    rows = rows.select_columns(wanted)
    return {name: rows.filter(expr=col(Column.SPLIT) == name).materialize()
            for name in ("train", "val")}


IMAGE_COLUMNS = (Column.IMAGE_2D, Column.IMAGE_3D)


def _rows_per_shard(batch: pa.Table) -> pa.Table:
    """Rows of ``batch`` per shard file (its ``path`` column)."""
    counts = Counter(batch.column("path").to_pylist())
    return pa.table({"path": list(counts), "rows": list(counts.values())})


def _undecodable(batch: pa.Table) -> pa.Table:
    """The rows of ``batch`` with an image that does not decode: pose, column, shard, reason."""
    from p2l3d_core.render import decode_png

    out: dict[str, list] = {Column.POSE_ID: [], "column": [], "path": [], "reason": []}
    for column in IMAGE_COLUMNS:
        for i, data in enumerate(batch.column(column).to_pylist()):
            try:
                decode_png(data)
            except (ValueError, TypeError) as err:
                out[Column.POSE_ID].append(str(batch.column(Column.POSE_ID)[i]))
                out["column"].append(column)
                out["path"].append(str(batch.column("path")[i]))
                out["reason"].append(str(err))
    return pa.table(out)
