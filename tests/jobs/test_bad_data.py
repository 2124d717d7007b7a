"""Bad data at each entry point (issue 25): a corrupt Parquet shard, a pose with NaN joints, a
BVH with a broken hierarchy, an empty bucket and a model folder with a truncated
``model.safetensors``, each given to every job (and library call) that takes it. Each ends in a
clear error that names the input and the problem (exit 2 for a job; an error line or row per
input where one bad input must not stop the others), never a hang (every test has a timeout)
or a silent skip.

The jobs run in-process (``call_main``); those that need Ray share the session's ``ray_local``
(the others refuse before they would start it). One tiny rendered dataset and one tiny untrained
student serve the whole module.

Covered elsewhere, not repeated here (each has its own timeout):
- a cut shard given to jobs/train_teacher.py: ``tests/jobs/test_train_teacher_job.py``
  (``test_a_cut_shard_is_named_before_ray_starts``); cut, missing and same-size shards at the
  library (``load_table``, ``check_shards``, a re-render with ``--verify``) and a shard holding
  other rows or an undecodable image: ``tests/dataset/test_pipeline.py``;
- NaN or infinite keypoints given to ``Predictor.describe`` and ``describe_batch`` with real
  COCO people: ``tests/inference/test_predictor.py``; to the Serve app (a 400):
  ``tests/serve_apps/test_app.py``;
- the BVH reader's own refusals (each brace fault, a cut file, nan and inf, binary data):
  ``tests/poses/test_bvh.py``;
- an empty local input folder given to jobs/batch_caption.py:
  ``tests/jobs/test_batch_caption_job.py`` (``test_an_empty_input_folder_is_refused``).
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

# A two-bone arm as in tests/poses/test_bvh.py, with the lines the cases below damage.
TINY_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Arm
  {
    OFFSET 1 0 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    End Site
    {
      OFFSET 0 3 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
0 0 0 0 0 0  0 0 0
10 20 30 0 0 0  90 0 0
"""

# A standing person in COCO-17 order, [x, y, visibility] as a COCO annotation holds them.
PERSON = [[320, 100, 2], [330, 90, 2], [310, 90, 2], [340, 95, 2], [300, 95, 2],
          [360, 150, 2], [280, 150, 2], [380, 210, 2], [260, 210, 2], [390, 270, 2],
          [250, 270, 2], [345, 280, 2], [295, 280, 2], [350, 370, 2], [290, 370, 2],
          [352, 450, 2], [288, 450, 2]]


def _flat(person: list[list[float]]) -> list[float]:
    return [value for joint in person for value in joint]


@pytest.fixture(scope="module")
def dataset(ray_local, tmp_path_factory) -> Path:
    """A rendered dataset of 40 poses in 4 shards (32 px images): tests damage copies of it."""
    from p2l3d_core.config import DatasetConfig
    from p2l3d_core.dataset.pipeline import render_dataset

    out = tmp_path_factory.mktemp("bad_data") / "dataset"
    render_dataset(str(out), DatasetConfig(num_poses=40, shard_size=10, image_size=32, seed=5),
                   log=lambda m: None)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_torch_thread) -> Path:
    """A run folder holding one model, a tiny untrained student (run/student)."""
    import torch

    from p2l3d_core.models import Student, save_pretrained
    from p2l3d_core.models.config import preset

    torch.manual_seed(3)
    folder = tmp_path_factory.mktemp("bad_data_run")
    save_pretrained(Student(preset("tiny", 32)), folder / "student")
    return folder


def _copy_model(model: Path, dest: Path, weights: bytes) -> Path:
    """``model``'s folder at ``dest`` with ``weights`` as its model.safetensors."""
    shutil.copytree(model, dest, ignore=shutil.ignore_patterns("model.safetensors"))
    (dest / "model.safetensors").write_bytes(weights)
    return dest


@pytest.fixture(scope="module")
def cut_run(run, tmp_path_factory) -> Path:
    """A run whose student's model.safetensors stops halfway, as an interrupted copy does."""
    weights = (run / "student" / "model.safetensors").read_bytes()
    folder = tmp_path_factory.mktemp("bad_data_cut_run")
    _copy_model(run / "student", folder / "student", weights[: len(weights) // 2])
    return folder


def _damaged_copy(dataset: Path, dest: Path, damage: str) -> Path:
    """A copy of ``dataset`` with shard 1 cut to half its size, or with 16 bytes in its middle
    inverted (same size: a size check misses it); returns the damaged shard."""
    shutil.copytree(dataset, dest)
    shard = dest / "shards" / "part-00001.parquet"
    data = bytearray(shard.read_bytes())
    if damage == "cut":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    shard.write_bytes(bytes(data))
    return shard


def _shard_problem(shard: Path, damage: str, dataset: Path) -> str:
    """What the error says of the damaged shard."""
    recorded = json.loads((dataset / "manifest.json").read_text())["shards"][1]["bytes"]
    if damage == "cut":
        return f"shard {shard} is damaged ({recorded // 2} bytes, the manifest recorded {recorded})"
    return f"shard {shard} is damaged (sha256 "


# -- 1. a corrupt Parquet shard in a rendered dataset -------------------------------------------


@pytest.mark.timeout(120)
def test_a_shard_changed_in_place_is_named_by_train_teacher(dataset, train_teacher_job,
                                                            call_main, tmp_path):
    """A shard with bytes changed and its size kept passed the size check: Parquet read it as
    other values (or failed inside a Ray Data task, as a traceback naming no shard). The
    cut shard: tests/jobs/test_train_teacher_job.py."""
    shard = _damaged_copy(dataset, tmp_path / "ds", "same-size")
    code, printed = call_main(train_teacher_job, "--data", str(tmp_path / "ds"), "--output",
                              str(tmp_path / "run"), "--preset", "smoke")
    assert code == 2, printed[-2000:]
    assert f"dataset {tmp_path / 'ds'}: {_shard_problem(shard, 'same-size', dataset)}" in printed
    assert "--verify to repair it" in printed and "Traceback" not in printed
    assert not (tmp_path / "run").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("damage", ["cut", "same-size"])
def test_a_damaged_shard_is_named_by_distill(dataset, distill_job, call_main, ray_local,
                                             tmp_path, damage):
    shard = _damaged_copy(dataset, tmp_path / "ds", damage)
    code, printed = call_main(distill_job, "--data", str(tmp_path / "ds"), "--output",
                              str(tmp_path / "run"), "--preset", "smoke")
    assert code == 2, printed[-2000:]
    assert _shard_problem(shard, damage, dataset) in printed and "Traceback" not in printed
    assert not (tmp_path / "run" / "teacher").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flag", ["--data", "--set"])
@pytest.mark.parametrize("damage", ["cut", "same-size"])
def test_a_damaged_shard_is_named_by_evaluate(dataset, run, evaluate_job, call_main, tmp_path,
                                              damage, flag):
    """The test split (--data) and another set (--set) are read in-process: each shard is
    checked against the manifest's size and sha256 as it is read."""
    shard = _damaged_copy(dataset, tmp_path / "ds", damage)
    where = (["--data", str(tmp_path / "ds")] if flag == "--data" else
             ["--data", str(dataset), "--set", f"other={tmp_path / 'ds'}"])
    code, printed = call_main(evaluate_job, "--run", str(run), *where, "--latency-samples", "0",
                              "--lifter-epochs", "1", "--no-meteor")
    assert code == 2, printed[-2000:]
    assert _shard_problem(shard, damage, dataset) in printed and "Traceback" not in printed
    assert "lifter: training" not in printed  # refused while the sets are read
    assert not (run / "report").exists()


# -- 2. a pose with NaN joints ------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_nan_keypoints_given_to_the_predictor_are_named(run):
    """Without ../shared/data (tests/inference/test_predictor.py uses real COCO people there):
    one call refuses the pose, a batch gives that input its error and describes the others."""
    from p2l3d_core.inference.images import BadInput
    from p2l3d_core.inference.predictor import Predictor

    predictor = Predictor.from_pretrained(str(run / "student"))
    broken = np.array(PERSON, dtype=np.float64)
    broken[9, 0] = np.nan  # the left wrist
    with pytest.raises(BadInput, match=r"^input 1: NaN or infinite values at joints \[9\]"):
        predictor.describe(broken)
    good, bad, other = predictor.describe_batch([np.array(PERSON), broken, np.array(PERSON)],
                                                names=["a", "broken", "c"])
    assert bad.error.startswith("broken: NaN or infinite values at joints [9]")
    assert bad.people == [] and good.error is None and other.error is None
    assert len(good.people) == len(other.people) == 1 and good.people[0].caption


@pytest.mark.timeout(120)
def test_a_keypoints_file_with_nan_is_an_error_row_and_the_others_go_on(run, describe_job,
                                                                         call_main, tmp_path):
    """One person's NaN fails that person, naming the file, the annotation and the joint; the
    other is described; the exit status is 1 (describe.py: a failed input, the others go on)."""
    broken = [list(map(float, joint)) for joint in PERSON]
    broken[9][1] = float("nan")
    people = tmp_path / "people.json"
    people.write_text(json.dumps({"annotations": [
        {"id": 7, "keypoints": _flat(broken)}, {"id": 8, "keypoints": _flat(PERSON)}]}))
    assert "NaN" in people.read_text()  # Python's json writes (and reads) the NaN literal
    code, printed = call_main(describe_job, "--model", str(run / "student"), str(people),
                              "--json")
    assert code == 1, printed[-2000:]
    rows = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    errors = {r["source"]: r["error"] for r in rows if "error" in r}
    assert errors == {f"{people}#7": f"{people}#7: NaN or infinite values at joints [9]; mark "
                                     "a missing joint with confidence 0 instead"}
    assert [r["source"] for r in rows if "error" not in r] == [f"{people}#8"]


def _h36m_body3d(folder: Path, nan_at: tuple[int, int] | None = None,
                 missing_pelvis: int | None = None) -> Path:
    """An mmpose-style H36M body3d npz of 4 generated poses, with a cameras.pkl beside it:
    ``nan_at`` (sample, joint) puts a NaN in a joint marked visible; ``missing_pelvis`` marks a
    sample's pelvis unseen (visibility 0), as the format marks a missing joint."""
    from p2l3d_core.poses.generator import generate_records

    folder.mkdir()
    R = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # camera -> world
    T = np.array([0.0, -5.0, 1.0])  # the camera's position, looking along +y
    K = np.array([[1000.0, 0.0, 500.0], [0.0, 1000.0, 500.0], [0.0, 0.0, 1.0]])
    names, S, part = [], [], []
    for k, record in enumerate(generate_records(2, 0, 4)):
        cam = (np.asarray(record.joints_3d) - T) @ R  # R.T @ (X - T), row-wise
        uv = cam @ K.T
        names.append(f"S1/S1_Directions_1.54138969/S1_Directions_1.54138969_{k + 1:06d}.jpg")
        S.append(np.concatenate([cam, np.ones((17, 1))], axis=1))
        part.append(np.concatenate([uv[:, :2] / uv[:, 2:], np.ones((17, 1))], axis=1))
    S, part = np.array(S), np.array(part)
    if nan_at is not None:
        S[nan_at[0], nan_at[1], 1] = np.nan
    if missing_pelvis is not None:
        S[missing_pelvis, 0, 3] = 0.0
    path = folder / "test_h36m_body3d.npz"
    np.savez(path, imgname=np.array(names), S=S, part=part)
    camera = {"R": R.tolist(), "T": T.tolist(), "f": [1000.0, 1000.0], "c": [500.0, 500.0],
              "w": 1000, "h": 1000}
    (folder / "cameras.pkl").write_bytes(pickle.dumps({("S1", "54138969"): camera}))
    return path


def _videopose3d_with_nan(folder: Path) -> Path:
    """A VideoPose3D data_3d npz (positions_3d: subject -> action -> (frames, 32, 3)) whose
    second frame has a NaN at H36M-32 joint 19 (the left wrist)."""
    from p2l3d_core.poses.generator import generate_records
    from p2l3d_core.poses.h36m import H36M32_TO_17

    folder.mkdir()
    clip = np.zeros((3, 32, 3))
    for frame, record in enumerate(generate_records(2, 0, 3)):
        clip[frame, list(H36M32_TO_17)] = record.joints_3d
    clip[1, 19, 2] = np.nan
    path = folder / "data_3d_h36m.npz"
    np.savez(path, positions_3d=np.array({"S9": {"Walking 1": clip}}, dtype=object))
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source, message", [
    (lambda tmp: f"h36m:{_h36m_body3d(tmp / 'h36m', nan_at=(2, 13))}",
     ("{file}: sample 2 (S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000003.jpg), "
      "'S': NaN or infinite values at visible joint(s) ['l_wrist'] (a missing joint has "
      "visibility 0): the file is damaged")),
    (lambda tmp: f"h36m:{_videopose3d_with_nan(tmp / 'vp3d')}",
     "{file}: S9/Walking 1 frame 1: NaN or infinite positions of ['l_wrist']: the file is damaged"
     ),
    (lambda tmp: f"bvh:{_write(tmp / 'nan.bvh', TINY_BVH.replace('10 20 30', '10 nan 30'))}",
     "{file}:20: a motion value is not a finite number: 'nan'"),
], ids=["h36m-body3d", "videopose3d", "bvh"])
def test_a_nan_joint_in_a_pose_file_is_refused_by_the_render_job(render_job, call_main,
                                                                 tmp_path, source, message):
    """A NaN where the file says a joint was seen was read as a missing joint, without a word
    (BVH and VideoPose3D have no missing joints at all). The file is read before Ray starts."""
    spec = source(tmp_path)
    file = spec.split(":", 1)[1]
    code, printed = call_main(render_job, "--output", str(tmp_path / "out"), "--source", spec,
                              "--image-size", "32")
    assert code == 2, printed[-2000:]
    assert f"invalid arguments: {message.format(file=file)}" in printed
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(120)
def test_a_pose_whose_pelvis_is_missing_is_a_failure_listed_in_the_manifest(
        render_job, call_main, ray_local, tmp_path):
    """A pose the file marks without a pelvis (visibility 0: NaN) cannot be centred: the
    render job renders the others and lists it, with the reason, in the manifest's failures
    and in its log (not dropped without a word)."""
    npz = _h36m_body3d(tmp_path / "h36m", missing_pelvis=1)
    code, printed = call_main(render_job, "--output", str(tmp_path / "out"), "--source",
                              f"h36m:{npz}", "--image-size", "32", "--num-captions", "1")
    assert code == 0, printed[-2000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    pose = "h36m/S1_Directions_1.54138969_000002"
    assert manifest["failures"] == [{"pose_id": pose,
                                     "reason": "pelvis is missing: the pose cannot be centred"}]
    assert manifest["num_rows"] == 3
    assert "1 poses failed" in printed and pose in printed


# -- 3. a BVH with a broken hierarchy ------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BROKEN_HIERARCHIES = [
    ("joint-without-offset", TINY_BVH.replace("    OFFSET 1 0 0\n", ""),
     "{file}:7: joint Arm has no OFFSET (its '}}' at line 13)"),
    ("end-site-without-offset", TINY_BVH.replace("      OFFSET 0 3 0\n", ""),
     "{file}:11: joint Arm_end has no OFFSET (its '}}' at line 12)"),
    ("no-root", TINY_BVH.replace("ROOT Hips", "JOINT Hips"),
     "{file}:2: JOINT Hips outside any joint (the hierarchy begins with ROOT)"),
    ("root-inside-a-joint", TINY_BVH.replace("JOINT Arm", "ROOT Arm"),
     "{file}:6: ROOT Arm inside joint Hips (a joint within another is a JOINT)"),
    ("channels-count-too-high", TINY_BVH.replace("CHANNELS 3", "CHANNELS 5"),
     ("{file}:10: CHANNELS 5 of Arm (line 9): 'End' is not a channel (Xposition .. Zrotation);"
      " the count or a name is wrong")),
    ("channels-count-too-low", TINY_BVH.replace("CHANNELS 3", "CHANNELS 2"),
     "{file}:9: channel 'Xrotation' after the CHANNELS list (its count is too low)"),
    ("unknown-channel", TINY_BVH.replace("Zrotation Yrotation Xrotation\n  JOINT",
                                         "Zrotation Yrotation Wrotation\n  JOINT"),
     "{file}:5: CHANNELS 6 of Hips (line 5): 'Wrotation' is not a channel"),
    ("brace-missing", TINY_BVH.replace("      OFFSET 0 3 0\n    }\n", "      OFFSET 0 3 0\n"),
     ("{file}:15: MOTION begins with 1 joint(s) not closed: the '{{' of Hips at line 3 has no "
      "'}}'")),
    ("brace-too-many", TINY_BVH.replace("}\nMOTION", "}\n}\nMOTION"),
     "{file}:16: '}}' closes no joint (one too many)"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("damaged, message", [case[1:] for case in BROKEN_HIERARCHIES],
                         ids=[case[0] for case in BROKEN_HIERARCHIES])
def test_a_broken_bvh_hierarchy_is_refused_by_the_render_job_with_its_line(
        render_job, call_main, tmp_path, damaged, message):
    """Before the reader checked them, a JOINT without OFFSET sat on its parent, a JOINT in place
    of ROOT or a ROOT inside a joint was read as fine, and an unknown channel name turned
    about Z: each a different motion, without a word."""
    assert damaged != TINY_BVH
    bvh = _write(tmp_path / "broken.bvh", damaged)
    code, printed = call_main(render_job, "--output", str(tmp_path / "out"), "--source",
                              f"bvh:{bvh}", "--image-size", "32")
    assert code == 2, printed[-2000:]
    assert f"invalid arguments: {message.format(file=bvh)}" in printed
    assert "Traceback" not in printed and not (tmp_path / "out").exists()


@pytest.mark.timeout(120)
def test_a_broken_bvh_given_to_distill_real_is_refused_before_any_training(
        dataset, distill_job, call_main, ray_local, tmp_path):
    bvh = _write(tmp_path / "broken.bvh", TINY_BVH.replace("    OFFSET 1 0 0\n", ""))
    code, printed = call_main(distill_job, "--data", str(dataset), "--output",
                              str(tmp_path / "run"), "--preset", "smoke", "--stages", "evaluate",
                              "--real", f"walk=bvh:{bvh}")
    assert code == 2, printed[-2000:]
    assert f"{bvh}:7: joint Arm has no OFFSET" in printed


# -- 4. an empty bucket --------------------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("prefix, problem", [("", "holds no files: nothing to caption"),
                                             ("photos/", "does not exist")])
def test_batch_caption_over_an_empty_bucket_says_so(run, batch_caption_job, call_main,
                                                    ray_local, s3_bucket, tmp_path, prefix,
                                                    problem):
    """Not an empty summary and exit 0, as if the run had worked: nothing is written."""
    code, printed = call_main(batch_caption_job, "--model", str(run / "student"), "--input",
                              f"{s3_bucket}/{prefix}", "--output", str(tmp_path / "out"))
    assert code == 2, printed[-2000:]
    assert f"input {s3_bucket}/{prefix} {problem}" in printed
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(60)
def test_train_teacher_on_an_empty_bucket_says_there_is_no_dataset(train_teacher_job, call_main,
                                                                   s3_bucket, tmp_path):
    code, printed = call_main(train_teacher_job, "--data", f"{s3_bucket}/dataset", "--output",
                              str(tmp_path / "run"), "--preset", "smoke")
    assert code == 2, printed[-2000:]
    assert f"no manifest.json under {s3_bucket}/dataset: not a rendered dataset" in printed
    assert not (tmp_path / "run").exists()


@pytest.mark.timeout(120)
def test_distill_on_an_empty_bucket_says_there_is_no_dataset(distill_job, call_main, ray_local,
                                                             s3_bucket, tmp_path):
    code, printed = call_main(distill_job, "--data", f"{s3_bucket}/dataset", "--output",
                              str(tmp_path / "run"), "--preset", "smoke")
    assert code == 2, printed[-2000:]
    assert f"no manifest.json under {s3_bucket}/dataset: not a rendered dataset" in printed
    assert not (tmp_path / "run").exists()


@pytest.mark.timeout(60)
def test_evaluate_on_an_empty_bucket_says_what_is_missing(run, evaluate_job, call_main,
                                                          s3_bucket):
    code, printed = call_main(evaluate_job, "--run", f"{s3_bucket}/run")
    assert code == 2 and f"no trained models under {s3_bucket}/run" in printed
    code, printed = call_main(evaluate_job, "--run", str(run), "--data", f"{s3_bucket}/dataset",
                              "--latency-samples", "0", "--no-meteor")
    assert code == 2, printed[-2000:]
    assert f"no manifest.json under {s3_bucket}/dataset: not a rendered dataset" in printed
    assert not (run / "report").exists()


# -- 5. a model folder with a truncated model.safetensors ---------------------------------------


def _cut_message(weights: Path) -> str:
    return f"{weights} is truncated ("


@pytest.mark.timeout(60)
@pytest.mark.parametrize("damage, message", [
    (lambda w: w[: len(w) // 2], ("is truncated ({half:,} of the {whole:,} bytes its header "
                                  "describes): the model folder is damaged; copy it again")),
    (lambda w: w[:5], "is truncated (5 bytes, shorter than its own header)"),
    (lambda w: w[:8] + bytes(32) + w[40:], "is damaged (its safetensors header cannot be read"),
], ids=["half", "header-cut", "header-zeroed"])
def test_a_damaged_model_safetensors_is_named_by_load_pretrained(run, tmp_path, damage, message):
    """safetensors said "incomplete metadata, file not fully covered", naming no file, as a
    SafetensorError that no caller caught."""
    from p2l3d_core.models.io import load_pretrained

    weights = (run / "student" / "model.safetensors").read_bytes()
    folder = _copy_model(run / "student", tmp_path / "model", damage(weights))
    expected = f"{folder / 'model.safetensors'} " + message.format(half=len(weights) // 2,
                                                                  whole=len(weights))
    with pytest.raises(ValueError) as refused:
        load_pretrained(folder)
    assert str(refused.value).startswith(expected), str(refused.value)


@pytest.mark.timeout(60)
def test_a_truncated_model_on_s3_is_named_by_its_uri_before_any_download(run, s3_server,
                                                                         s3_bucket):
    """Only the header is read: the first 64 KB of the file stand for a copy cut there."""
    import boto3

    from p2l3d_core.models.io import load_pretrained

    bucket = s3_bucket.removeprefix("s3://")
    s3 = boto3.client("s3", endpoint_url=s3_server)
    for name in ("config.json", "tokenizer.json"):
        s3.upload_file(str(run / "student" / name), bucket, f"model/{name}")
    s3.put_object(Bucket=bucket, Key="model/model.safetensors",
                  Body=(run / "student" / "model.safetensors").read_bytes()[:65536])
    with pytest.raises(ValueError, match=f"^{s3_bucket}/model/model.safetensors is truncated "
                                         r"\(65,536 of the "):
        load_pretrained(f"{s3_bucket}/model")


@pytest.mark.timeout(60)
def test_a_truncated_model_is_named_by_the_predictor(cut_run):
    from p2l3d_core.inference.predictor import Predictor

    with pytest.raises(ValueError, match=f"^{cut_run / 'student' / 'model.safetensors'} is "
                                         r"truncated \("):
        Predictor.from_pretrained(str(cut_run / "student"))


@pytest.mark.timeout(60)
def test_a_truncated_model_is_named_by_describe(cut_run, describe_job, call_main, tmp_path):
    people = tmp_path / "people.json"
    people.write_text(json.dumps({"annotations": [{"id": 1, "keypoints": _flat(PERSON)}]}))
    code, printed = call_main(describe_job, "--model", str(cut_run / "student"), str(people))
    assert code == 2, printed[-2000:]
    assert _cut_message(cut_run / "student" / "model.safetensors") in printed
    assert f"{people}#1" not in printed and "Traceback" not in printed


@pytest.mark.timeout(60)
def test_a_truncated_model_is_named_by_batch_caption_before_ray(cut_run, batch_caption_job,
                                                                call_main, tmp_path):
    """Every actor died loading it (Ray's ActorDiedError, a traceback), after run.json was
    written; the header is checked before Ray starts now."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "photo.jpg").write_bytes(b"not looked at")
    code, printed = call_main(batch_caption_job, "--model", str(cut_run / "student"), "--input",
                              str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    assert code == 2, printed[-2000:]
    assert _cut_message(cut_run / "student" / "model.safetensors") in printed
    assert "captioning" not in printed and not (tmp_path / "out").exists()


@pytest.mark.timeout(60)
def test_a_truncated_model_is_named_by_evaluate_before_the_sets_are_read(
        cut_run, dataset, evaluate_job, call_main):
    """It was loaded only after every set was read and the lifter had trained (minutes)."""
    code, printed = call_main(evaluate_job, "--run", str(cut_run), "--data", str(dataset),
                              "--latency-samples", "0", "--no-meteor")
    assert code == 2, printed[-2000:]
    assert _cut_message(cut_run / "student" / "model.safetensors") in printed
    assert "lifter" not in printed and not (cut_run / "report").exists()
