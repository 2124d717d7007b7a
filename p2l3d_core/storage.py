"""Local paths and ``s3://`` URIs behind one small interface (pyarrow filesystems).

S3 is configured the standard AWS way: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) for a
non-AWS endpoint such as MinIO or moto, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION`` / ``AWS_DEFAULT_REGION``. Writes are atomic for readers: a local file is written
under a temporary name and renamed; an S3 object only becomes visible when its upload completes.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from urllib.parse import urlparse

import pyarrow.fs as pafs

TMP_MARKER = ".tmp-"


AWS_ENV_VARS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
                "AWS_EC2_METADATA_DISABLED")


def aws_env() -> dict[str, str]:
    """The S3 settings of this process, to hand to remote workers so they see the same store."""
    return {k: os.environ[k] for k in AWS_ENV_VARS if k in os.environ}


def worker_runtime_env() -> dict:
    """A Ray ``runtime_env`` that carries this process's S3 settings to remote tasks and
    workers, so that every one of them sees the same store (empty: nothing to carry)."""
    env = aws_env()
    return {"env_vars": env} if env else {}


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def s3_filesystem() -> pafs.S3FileSystem:
    """An S3 filesystem from the standard AWS environment variables."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict = {}
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    return pafs.S3FileSystem(**kwargs)


def check_reachable(uri: str) -> None:
    """Raise ``ValueError`` in one line if the store behind an ``s3://`` URI cannot be reached
    (no network, no credentials, a wrong endpoint); local paths pass. Why: pyarrow's error comes
    minutes into a job as a traceback, and says nothing of the settings it used."""
    if not is_s3(uri):
        return
    fs, path = resolve(uri)
    try:
        fs.get_file_info(path)  # the location itself: credentials may cover a prefix only
    except OSError as err:
        if "ACCESS_DENIED" in str(err).upper().replace(" ", "_"):
            return  # the store answered: reachable (what may be read there is its own business)
        given = [k for k in AWS_ENV_VARS if k in os.environ and k != "AWS_EC2_METADATA_DISABLED"]
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"cannot reach {uri}: {detail}. S3 settings come from AWS_ENDPOINT_URL, "
                         f"AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION (set here: "
                         f"{', '.join(given) or 'none'})") from None


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, path inside it)`` for a local path or an ``s3://bucket/key`` URI."""
    if is_s3(uri):
        return s3_filesystem(), uri[len("s3://"):].rstrip("/")
    if "://" in uri and not uri.startswith("file://"):
        raise ValueError(f"unsupported storage URI {uri!r}: use a local path or s3://bucket/prefix")
    path = uri.removeprefix("file://")
    return pafs.LocalFileSystem(), os.path.abspath(path)


def absolute(uri: str) -> str:
    """A local path made absolute (Ray workers run in other directories); URIs unchanged. An
    empty one is refused: ``os.path.abspath("")`` is the current directory, which nobody means."""
    if not uri.strip():
        raise ValueError("an empty path or URI: name a folder, or s3://bucket/prefix")
    return uri if "://" in uri else os.path.abspath(uri)


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a local path or URI with ``/``."""
    if is_s3(uri):
        return posixpath.join(uri.rstrip("/"), *parts)
    return os.path.join(uri, *parts)


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_bytes(uri: str) -> bytes:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` so that a reader sees either nothing or the whole file."""
    fs, path = resolve(uri)
    if not is_s3(uri):
        fs.create_dir(os.path.dirname(path), recursive=True)
        tmp = f"{path}{TMP_MARKER}{uuid.uuid4().hex}"
        with fs.open_output_stream(tmp) as f:
            f.write(data)
        fs.move(tmp, path)
        return
    with fs.open_output_stream(path) as f:  # S3: the object appears only once complete
        f.write(data)


def read_json(uri: str) -> dict:
    return json.loads(read_bytes(uri).decode("utf-8"))


def write_json(uri: str, obj: dict) -> None:
    write_bytes(uri, json.dumps(obj, indent=2, sort_keys=True).encode("utf-8"))


def list_files(uri: str) -> list[str]:
    """URIs of the files directly inside ``uri`` (empty if it does not exist)."""
    fs, path = resolve(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    prefix = "s3://" if is_s3(uri) else ""
    return sorted(prefix + i.path for i in infos if i.type == pafs.FileType.File)


def list_folders(uri: str) -> list[str]:
    """Names of the folders directly inside ``uri`` (empty if it does not exist)."""
    fs, path = resolve(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def delete(uri: str) -> None:
    fs, path = resolve(uri)
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_file(path)


def ensure_bucket(uri: str) -> None:
    """Fail early, naming the URI, when an S3 bucket does not exist or cannot be reached."""
    if not is_s3(uri):
        return
    fs = s3_filesystem()
    bucket = uri[len("s3://"):].split("/", 1)[0]
    info = fs.get_file_info(bucket)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"S3 bucket {bucket!r} (from {uri}) "
                                "does not exist or is not visible")


def upload_folder(local: str, uri: str) -> None:
    """Copy a local folder's files (recursively) to ``uri`` (local path or ``s3://``)."""
    from pathlib import Path

    for path in sorted(Path(local).rglob("*")):
        if path.is_file():
            write_bytes(join(uri, *path.relative_to(local).parts), path.read_bytes())


def download_folder(uri: str, local: str) -> str:
    """Copy the files under ``uri`` (recursively) into the local folder ``local``."""
    fs, root = resolve(uri)
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except OSError as err:  # e.g. S3 bucket missing
        raise FileNotFoundError(f"nothing found under {uri}: {err}") from err
    files = [i for i in infos if i.type == pafs.FileType.File]
    if not files:
        raise FileNotFoundError(f"nothing found under {uri}")
    for info in files:
        rel = posixpath.relpath(info.path, root) if is_s3(uri) else os.path.relpath(info.path, root)
        dest = os.path.join(local, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with fs.open_input_stream(info.path) as src, open(dest, "wb") as out:
            out.write(src.read())
    return local
