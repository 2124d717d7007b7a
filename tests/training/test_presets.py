"""Pipeline presets: command-line overrides are checked before anything renders or trains."""

import pytest

from p2l3d_core.training.presets import PRESETS, get_preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_valid(name):
    assert get_preset(name) == PRESETS[name]


@pytest.mark.parametrize("override, message", [
    ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
    ({"num_workers": 0}, "num_workers must be >= 1, got 0"),
    ({"seeds": 0}, "seeds must be >= 1, got 0"),
    ({"eval_poses": 0}, "eval_poses must be >= 1, got 0"),
    ({"labelled_fraction": 1.5}, r"labelled_fraction must be in \(0, 1\], got 1.5"),
    ({"labelled_fraction": 0.0}, r"labelled_fraction must be in \(0, 1\], got 0.0"),
    ({"curve": (0.05, 2.0)}, r"each learning-curve fraction must be in \(0, 1\], got 2.0"),
    ({"lr": -1e-3}, "lr must be > 0, got -0.001"),
    ({"student_pose_input": "depth"}, "student_pose_input must be one of"),
])
def test_an_override_that_cannot_run_is_refused_by_name(override, message):
    with pytest.raises(ValueError, match=message):
        get_preset("quickstart", **override)


def test_an_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="unknown preset 'huge': choose from quickstart, paper, smoke"):
        get_preset("huge")
