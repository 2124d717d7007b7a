"""The pose model files: pinned by checksum, fetched once at set-up, refused when wrong."""

import shutil

import pytest

from p2l3d_core.inference import model_files
from p2l3d_core.inference.model_files import FETCH_COMMAND, POSE_FILES, fetch, resolve


@pytest.fixture(scope="module")
def cached():
    """The folder ``make test`` fetched the files into (the tests never download)."""
    try:
        return resolve()
    except FileNotFoundError as err:
        pytest.fail(f"{err} (make test fetches them before the suite runs)")


def test_a_missing_file_is_named_with_the_command_that_fetches_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        resolve(tmp_path)
    text = str(err.value)
    assert f"pose model file {tmp_path / 'pose_detection.tflite'} is missing" in text
    assert FETCH_COMMAND in text and "make pose-models" in text


def test_a_corrupt_or_other_version_is_refused(tmp_path, cached):
    for f in POSE_FILES:
        shutil.copy(cached / f.name, tmp_path / f.name)
    assert resolve(tmp_path) == tmp_path
    damaged = tmp_path / POSE_FILES[1].name
    damaged.write_bytes(damaged.read_bytes()[:-10])  # cut short, as an interrupted copy is
    with pytest.raises(FileNotFoundError, match="pose_landmark_full.tflite is corrupt or another "
                                                "version: sha256 "):
        resolve(tmp_path)


def test_fetch_keeps_intact_files_without_downloading(tmp_path, cached, monkeypatch):
    for f in POSE_FILES:
        shutil.copy(cached / f.name, tmp_path / f.name)

    def no_download(*args, **kwargs):
        raise AssertionError("fetch downloaded although every file was there")

    monkeypatch.setattr(model_files.subprocess, "run", no_download)
    said: list[str] = []
    assert fetch(tmp_path, log=said.append) == tmp_path
    assert "all 2 present and intact" in said[0]


def test_the_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("P2L3D_POSE_MODELS", str(tmp_path / "elsewhere"))
    assert model_files.default_folder() == tmp_path / "elsewhere"
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        resolve()
