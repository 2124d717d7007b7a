"""The restricted unpickler loads numpy data and refuses everything that could run code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from p2l3d_core.poses.safe_pickle import UnsafePickleError, load_npz_object, safe_load, safe_loads


class _RunsShell:
    """Unpickling this calls os.system (the classic pickle attack)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trips_numpy_data() -> None:
    data = {("S1", "54138969"): {"R": np.eye(3), "T": np.arange(3.0).reshape(3, 1),
                                 "w": 1000, "name": "camera1", "k": np.float32(0.5)},
            "list": [1, 2.5, (3, "x")], "set": {1, 2}, "ints": np.arange(4, dtype=np.int16)}
    for protocol in (2, 3, 4, 5):
        out = safe_loads(pickle.dumps(data, protocol=protocol))
        np.testing.assert_array_equal(out[("S1", "54138969")]["T"], data[("S1", "54138969")]["T"])
        assert out["set"] == {1, 2} and out["list"] == [1, 2.5, (3, "x")]
        assert out["ints"].dtype == np.int16
        assert out[("S1", "54138969")]["k"] == np.float32(0.5)


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_refuses_os_system_and_runs_nothing(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"R": np.eye(3), "x": _RunsShell(marker)}, protocol=protocol))
    with pytest.raises(UnsafePickleError) as err:
        safe_load(path)
    assert str(path) in str(err.value) and "system" in str(err.value)
    assert not marker.exists()


def test_refuses_other_callables() -> None:
    for payload in (pickle.dumps(eval), pickle.dumps(np.load), pickle.dumps(getattr)):
        with pytest.raises(UnsafePickleError):
            safe_loads(payload, "payload")


def test_npz_object_array_read_without_allow_pickle(tmp_path: Path) -> None:
    path = tmp_path / "positions.npz"
    value = {"S1": {"Walking": np.ones((2, 32, 3))}}
    np.savez(path, positions_3d=np.array(value, dtype=object), plain=np.arange(3))
    out = load_npz_object(path, "positions_3d")
    np.testing.assert_array_equal(out["S1"]["Walking"], value["S1"]["Walking"])
    with pytest.raises(ValueError):
        load_npz_object(path, "plain")  # not an object array
    with pytest.raises(KeyError):
        load_npz_object(path, "absent")


def test_npz_with_malicious_object_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "data_3d_h36m.npz"
    np.savez(path, positions_3d=np.array({"S1": _RunsShell(marker)}, dtype=object))
    with pytest.raises(UnsafePickleError) as err:
        load_npz_object(path, "positions_3d")
    assert "positions_3d" in str(err.value) and "system" in str(err.value)
    assert not marker.exists()


def test_real_camera_pickle(shared_file) -> None:
    cams = safe_load(shared_file("poses/mmpose/h36m/cameras.pkl"))
    assert len(cams) == 44 and cams[("S1", "54138969")]["R"].shape == (3, 3)
