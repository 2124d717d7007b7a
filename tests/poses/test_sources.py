import numpy as np
import pytest

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.build import build_table
from p2l3d_core.poses.sources import count_records, load_records, parse_source


def test_parse_source_checks_kind_and_file(tmp_path):
    assert parse_source("synthetic") == ("synthetic", None, None)
    clip = tmp_path / "a.bvh"
    clip.write_text("x")
    assert parse_source(f"bvh:{clip}@walk") == ("bvh", clip.resolve(), "walk")
    with pytest.raises(ValueError, match="unknown pose source 'kinect'"):
        parse_source("kinect")
    with pytest.raises(ValueError, match="needs a file"):
        parse_source("h36m:")
    with pytest.raises(FileNotFoundError, match="no such file"):
        parse_source("bvh:/nowhere/x.bvh")


def test_synthetic_slices_are_consistent():
    a = load_records("synthetic", 5, 0, 10)
    b = load_records("synthetic", 5, 5, 5)
    assert [r.pose_id for r in a[5:]] == [r.pose_id for r in b]


def test_h36m_source_renders(shared_data):
    spec = f"h36m:{shared_data / 'poses/mmpose/h36m/test_h36m_body3d.npz'}"
    assert count_records(spec) == 4
    records = load_records(spec, 0, 0, 4)
    result = build_table(records, DatasetConfig(num_poses=4, source=spec, image_size=64))
    assert result.table.num_rows == 4 and not result.failures
    assert set(result.table.column("source").to_pylist()) == {"h36m"}


def test_bvh_source_renders_with_its_action(shared_data):
    spec = f"bvh:{shared_data / 'mocap/131_03.bvh'}@hop"
    n = count_records(spec)
    assert n > 100
    records = load_records(spec, 0, 10, 6)
    assert {r.action for r in records} == {"hop"}
    assert all(np.isfinite(r.joints_3d).all() for r in records)
    result = build_table(records, DatasetConfig(num_poses=6, source=spec, image_size=64))
    assert result.table.num_rows == 6
    assert any("hop" in c.lower()
               for captions in result.table.column("captions").to_pylist() for c in captions)


def test_wrong_layout_npz_is_a_clear_error(shared_data):
    with pytest.raises(ValueError, match="17-joint"):
        load_records(f"h36m:{shared_data / 'poses/mmpose/h36m/test_h36m.npz'}", 0, 0, 4)


def test_real_data_splits_by_subject_or_clip(shared_data):
    from p2l3d_core.config import SplitFractions
    from p2l3d_core.dataset.build import split_of

    clip = load_records(f"bvh:{shared_data / 'mocap/131_02.bvh'}", 0, 0, 50)
    # one clip, one split
    assert len({split_of(r.split_group, SplitFractions()) for r in clip}) == 1
    h36m = load_records(f"h36m:{shared_data / 'poses/mmpose/h36m/test_h36m_body3d.npz'}", 0, 0, 4)
    assert [r.split_group for r in h36m] == ["h36m/S1", "h36m/S5", "h36m/S7", "h36m/S8"]


@pytest.mark.parametrize("kind, name, content, message", [
    ("h36m", "bad.npz", b"not a zip archive", "h36m source .*bad.npz cannot be read"),
    ("bvh", "bad.bvh", b"HIERARCHY\nROOT Hips\n{\n OFFSET 0 0\n",
     "bad.bvh:4: an OFFSET needs 3 number"),
])
def test_corrupt_source_files_are_named(tmp_path, kind, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        count_records(f"{kind}:{path}")


PANOPTIC = "poses/mmpose/panoptic_body3d"


def test_panoptic_source_reads_every_body_and_renders(shared_file):
    root = shared_file(PANOPTIC)
    spec = f"panoptic:{root}"
    assert parse_source(spec) == ("panoptic", root.resolve(), None)
    n = count_records(spec)
    assert n == 12  # 2 sequences x 2 scenes x 3 bodies
    records = load_records(spec, 0, 0, n)
    assert {r.source for r in records} == {"panoptic"} and {r.action for r in records} == {"band"}
    assert {r.split_group for r in records} == {"panoptic/160906_band1", "panoptic/160906_band2"}
    assert len({r.pose_id for r in records}) == n
    result = build_table(records[:4], DatasetConfig(num_poses=4, source=spec, image_size=64))
    assert result.table.num_rows == 4 and not result.failures
    # one scene file, and a sequence folder with an action label
    scene = root / "160906_band1/hdPose3d_stage1_coco19/body3DScene_00000168.json"
    assert count_records(f"panoptic:{scene}") == 3
    labelled = load_records(f"panoptic:{root / '160906_band2'}@playing music", 0, 0, 10)
    assert len(labelled) == 6 and {r.action for r in labelled} == {"playing music"}


def test_panoptic_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        parse_source("panoptic:/nowhere/panoptic")
    with pytest.raises(ValueError, match="no body3DScene"):
        count_records(f"panoptic:{tmp_path}")
    scene = tmp_path / "seq" / "hdPose3d_stage1_coco19" / "body3DScene_00000001.json"
    scene.parent.mkdir(parents=True)
    scene.write_text('{"bodies": []}')
    with pytest.raises(ValueError, match="no calibration"):
        count_records(f"panoptic:{scene}")


def test_3dhp_npz_through_the_h36m_kind_and_action_labels(shared_file):
    npz = shared_file("poses/mmpose/mpi_inf_3dhp/test_3dhp_train.npz")
    records = load_records(f"h36m:{npz}", 0, 0, 10)
    assert len(records) == 2 and {r.source for r in records} == {"mpi_inf_3dhp"}
    assert {r.action for r in records} == {"unknown"}
    assert {r.action for r in load_records(f"h36m:{npz}@standing", 0, 0, 10)} == {"standing"}


@pytest.mark.parametrize("label, action", [
    ("hop", "jumping"), ("walk", "walking"), ("Walking", "walking"), ("WalkDog 1", "walking"),
    ("WalkingDog", "walking"), ("TakingPhoto", "taking_photo"), ("jumping", "jumping"),
    ("Directions", None), ("SittingDown", None), ("band", None), ("unknown", None),
    ("131_01", None), ("", None),
])
def test_real_labels_answer_as_the_generator_action_they_mean(label, action):
    """A model trained on the generator can name a real set's action only where the label's
    answer is one of the generator's actions' answers."""
    from p2l3d_core.language.actions import action_text
    from p2l3d_core.poses.generator import ACTIONS

    generator_answers = {action_text(a).answer: a for a in ACTIONS}
    assert generator_answers.get(action_text(label).answer) == action
