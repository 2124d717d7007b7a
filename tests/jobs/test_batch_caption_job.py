"""jobs/batch_caption.py with real parts (issue 23): a tiny untrained student saved with
save_pretrained, the real MoveNet people finder, a local Ray instance with 2 CPUs, moto's S3
server, and the real photos and video of ../shared/data. ``main()`` runs in-process on one shared
Ray instance; the kill -9 test runs the job as a subprocess, as a user does."""

from __future__ import annotations

import collections
import contextlib
import importlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from p2l3d_core import storage
from p2l3d_core.inference import archive

REPO = Path(__file__).resolve().parents[2]
JOBS = REPO / "jobs"
COLUMNS = ["source", "frame", "person", "bbox", "keypoints", "score", "caption", "answers",
           "error", "model"]
QUESTION = "Is the left knee bent?"
OTHER_QUESTION = "Which way is the person facing relative to the camera?"
COCO = ["000000000785.jpg", "000000040083.jpg", "000000196141.jpg", "000000197388.jpg"]
VIDEO = "two_people_indoor.mp4"
STRIDE = 24


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def job():
    sys.path.insert(0, str(JOBS))
    try:
        return importlib.import_module("batch_caption")
    finally:
        sys.path.remove(str(JOBS))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    import torch

    from p2l3d_core.models import Student, save_pretrained
    from p2l3d_core.models.config import preset

    torch.manual_seed(0)
    return str(save_pretrained(Student(preset("tiny", 32)),
                               tmp_path_factory.mktemp("student") / "model"))


@pytest.fixture(scope="module")
def ray_2cpus(s3_server):
    """One local Ray instance with 2 CPUs for this module's in-process runs, started as the job
    starts it (after the S3 settings are in the environment); kept if one is already up."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = not ray.is_initialized()
    if started:
        sys.path.insert(0, str(JOBS))
        try:
            from common import init_ray
        finally:
            sys.path.remove(str(JOBS))
        init_ray(num_cpus=2)
    yield ray
    if started:
        ray.shutdown()


def run_main(job, *argv: str) -> tuple[int, str]:
    """``job.main(argv)`` in-process -> (exit code, everything the job logged)."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    log = logging.getLogger("p2l3d")
    handler, level = Keep(logging.INFO), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        code = job.main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    return code, "\n".join(lines)


def parts_of(output: str) -> list[str]:
    return [u for u in storage.list_files(storage.join(output, "parts"))
            if u.endswith(".parquet")]


@pytest.fixture(scope="module")
def archive_run(job, model, ray_2cpus, s3_server, shared_file):
    """A bucket of real photos (COCO, skimage's), a video in a subfolder, a truncated JPEG, a
    text file and an empty object, captioned into S3 with overlays once for this module."""
    import uuid

    import boto3

    bucket = f"captions-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket=bucket)
    photos = {f"coco/{n}": shared_file(f"poses/mmpose/coco/{n}") for n in COCO}
    photos.update({n: shared_file(f"images/{n}")
                   for n in ("astronaut.png", "camera.png", "grace_hopper.jpg")})
    for key, path in photos.items():
        s3.put_object(Bucket=bucket, Key=f"in/{key}", Body=path.read_bytes())
    s3.put_object(Bucket=bucket, Key=f"in/videos/{VIDEO}",
                  Body=shared_file(f"videos/{VIDEO}").read_bytes())
    whole = shared_file(f"poses/mmpose/coco/{COCO[1]}").read_bytes()
    s3.put_object(Bucket=bucket, Key="in/broken/cut.jpg", Body=whole[:len(whole) // 2])
    s3.put_object(Bucket=bucket, Key="in/broken/notes.txt", Body=b"not a photo\n")
    s3.put_object(Bucket=bucket, Key="in/broken/empty.jpg", Body=b"")
    root = f"s3://{bucket}"
    args = ["--model", model, "--input", f"{root}/in", "--output", f"{root}/out",
            "--question", QUESTION, "--video-stride", str(STRIDE), "--overlays",
            f"{root}/overlays", "--batch-size", "4"]
    code, log = run_main(job, *args)
    return {"root": root, "input": f"{root}/in", "output": f"{root}/out", "args": args,
            "code": code, "log": log, "photos": sorted(f"{root}/in/{k}" for k in photos),
            "video": f"{root}/in/videos/{VIDEO}", "cut": f"{root}/in/broken/cut.jpg",
            "text": f"{root}/in/broken/notes.txt", "empty": f"{root}/in/broken/empty.jpg"}


def _by_source(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = collections.defaultdict(list)
    for r in rows:
        out[r["source"]].append(r)
    return out


# -- kill -9 and re-run -----------------------------------------------------------------------


def _session_members(sid: int) -> list[str]:
    """Live (not zombie) processes of session ``sid``: 'pid (pgid pgid): command line'."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            try:
                command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            found.append(f"{entry} (pgid {fields[2]}): {command.decode(errors='replace')[:200]}")
    return found


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_rerun_after_kill_9_captions_every_photo_exactly_once(model, tmp_path, shared_file):
    inputs = tmp_path / "in"
    inputs.mkdir()
    originals = {}
    for k in range(12):
        name = f"photo_{k:02d}.jpg"
        shutil.copy(shared_file(f"poses/mmpose/coco/{COCO[k % 4]}"), inputs / name)
        originals[str(inputs / name)] = COCO[k % 4]
    out = tmp_path / "out"
    cmd = [sys.executable, str(JOBS / "batch_caption.py"), "--model", model, "--input",
           str(inputs), "--output", str(out), "--batch-size", "2", "--num-cpus", "2"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    first_log = tmp_path / "first.log"
    with first_log.open("w") as log:
        driver = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not list((out / "parts").glob("*.parquet")):
            assert driver.poll() is None, first_log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no part written in 240 s"
            time.sleep(0.05)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray instance it started
        driver.wait(timeout=30)
    # Ray's raylet gives each worker process a process group of its own (in the same session):
    # an actor may outlive kill -9 of the driver's group until it notices its raylet is gone.
    # Kill those too, by id, so that no orphan writes a part behind the re-run's back.
    deadline = time.monotonic() + 30
    while (left := _session_members(driver.pid)) and time.monotonic() < deadline:
        for member in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(member.split()[0]), signal.SIGKILL)
        time.sleep(0.2)
    assert not left, f"processes of the killed run outlived kill -9: {left}"
    assert not (out / "summary.json").exists(), "the run finished before it was killed"
    killed_parts = {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("*.parquet")}
    assert 1 <= len(killed_parts) < 6
    done_before = archive.done_sources(str(out))
    assert len(done_before) == 2 * len(killed_parts)

    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
                           check=False)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"({len(done_before)} already done, {12 - len(done_before)} to go" in again.stdout
    # the parts of the killed run were kept, not redone
    assert {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("*.parquet")
            if p.name in killed_parts} == killed_parts
    assert len(list((out / "parts").glob("*.parquet"))) == 6

    rows = archive.read_rows(str(out)).to_pylist()
    by_source = _by_source(rows)
    assert set(by_source) == set(originals)  # every input, nothing else
    keys = [(r["source"], r["frame"], r["person"]) for r in rows]
    assert len(keys) == len(set(keys)), "a (source, frame, person) is there twice"
    per_original = collections.defaultdict(set)
    for source, source_rows in by_source.items():
        assert all(r["error"] is None for r in source_rows), source_rows[0]
        per_original[originals[source]].add(len(source_rows))
    # copies of one photo hold the same people: each copy was captioned exactly once
    assert all(len(counts) == 1 and min(counts) > 0 for counts in per_original.values()), (
        per_original)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"] == summary["files_with_rows"] == 12
    assert summary["outcomes"] == {"people found": 12}


# -- arguments -------------------------------------------------------------------------------


def test_help_explains_the_arguments(job, capsys):
    with pytest.raises(SystemExit) as exit_:
        job.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--model", "--input", "--output", "--question", "--video-stride", "--overlays",
                 "--batch-size", "--on-change", "s3://"):
        assert flag in out


@pytest.fixture
def photo_folder(tmp_path, shared_file) -> str:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(shared_file(f"poses/mmpose/coco/{COCO[0]}"), folder)
    return str(folder)


def test_a_missing_model_folder_is_refused_by_name(job, tmp_path, photo_folder):
    code, log = run_main(job, "--model", str(tmp_path / "nope"), "--input", photo_folder,
                         "--output", str(tmp_path / "out"))
    assert code == 2 and f"{tmp_path / 'nope'} is not a saved model" in log
    assert not (tmp_path / "out").exists()


def test_an_empty_question_is_refused(job, model, tmp_path, photo_folder):
    code, log = run_main(job, "--model", model, "--input", photo_folder, "--output",
                         str(tmp_path / "out"), "--question", QUESTION, "--question", "   ")
    assert code == 2 and "question 2: empty" in log
    assert not (tmp_path / "out").exists()


def test_one_local_file_is_an_input(job, model, tmp_path, shared_file):
    photo = str(shared_file(f"poses/mmpose/coco/{COCO[0]}"))
    args = job.parse_args(["--model", model, "--input", photo, "--output", str(tmp_path)])
    assert args.input == photo


@pytest.mark.timeout(180)  # issue 25: bad data never hangs
@pytest.mark.slow
def test_an_empty_input_folder_is_refused(job, model, tmp_path, ray_2cpus):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / ".hidden").write_text("x")
    code, log = run_main(job, "--model", model, "--input", str(tmp_path / "in"), "--output",
                         str(tmp_path / "out"))
    assert code == 2 and f"input {tmp_path / 'in'} holds no files" in log
    assert not (tmp_path / "out" / "run.json").exists()


# -- an archive on S3 ---------------------------------------------------------------------------


@pytest.mark.slow
def test_every_file_of_an_s3_archive_gets_rows(archive_run):
    run = archive_run
    assert run["code"] == 0, run["log"][-3000:]
    rows = archive.read_rows(run["output"]).to_pylist()
    by_source = _by_source(rows)
    inputs = run["photos"] + [run["video"], run["cut"], run["text"], run["empty"]]
    assert sorted(by_source) == sorted(inputs)
    keys = [(r["source"], r["frame"], r["person"]) for r in rows]
    assert len(keys) == len(set(keys)), "a (source, frame, person) is there twice"

    # people in every COCO photo (each has annotated people), full rows
    for name in COCO:
        people = by_source[f"{run['input']}/coco/{name}"]
        assert people and all(r["error"] is None for r in people), people
        assert sorted(r["person"] for r in people) == list(range(len(people)))
        for r in people:
            assert r["frame"] == 0 and len(r["bbox"]) == 4 and len(r["keypoints"]) == 17
            assert all(len(k) == 3 for k in r["keypoints"]) and 0 < r["score"] <= 1
            assert isinstance(r["caption"], str) and r["caption"]
            assert [a["question"] for a in r["answers"]] == [QUESTION]
            assert r["answers"][0]["answer"]
    # a photo is either people or exactly one "no person found" row; some portraits are the
    # latter with the tiny model's finder
    no_person = []
    for source in run["photos"]:
        source_rows = by_source[source]
        if any(r["error"] == "no person found" for r in source_rows):
            assert len(source_rows) == 1
            r = source_rows[0]
            assert r["person"] is None and r["caption"] is None and r["bbox"] is None
            no_person.append(source)
        else:
            assert all(r["error"] is None for r in source_rows)
    assert no_person, "no photo yielded 'no person found' (expected for the portraits)"


@pytest.mark.slow
def test_broken_files_get_one_error_row_naming_the_problem(archive_run):
    run = archive_run
    by_source = _by_source(archive.read_rows(run["output"]).to_pylist())
    expected = {run["cut"]: "a truncated jpeg", run["empty"]: "empty (0 bytes)",
                run["text"]: "not a photo or video (suffix .txt)"}
    for source, problem in expected.items():
        (row,) = by_source[source]
        assert row["error"].startswith(f"{source}: {problem}"), row["error"]
        assert row["person"] is None and row["caption"] is None and row["frame"] == 0


@pytest.mark.slow
def test_video_rows_are_sampled_frames_with_two_tracks(archive_run):
    run = archive_run
    rows = _by_source(archive.read_rows(run["output"]).to_pylist())[run["video"]]
    assert all(r["error"] is None for r in rows), rows[:3]
    frames = sorted({r["frame"] for r in rows})
    assert len(frames) >= 2 and all(f % STRIDE == 0 for f in frames) and frames[0] == 0
    assert {r["person"] for r in rows} == {0, 1}  # exactly 2 distinct track ids
    for f in frames:
        assert sorted(r["person"] for r in rows if r["frame"] == f) == [0, 1]


@pytest.mark.slow
def test_rows_have_the_documented_columns_and_the_model_fingerprint(archive_run, model):
    run = archive_run
    parts = parts_of(run["output"])
    assert parts
    for uri in parts:
        fs, path = storage.resolve(uri)
        with fs.open_input_file(path) as f:
            assert pq.read_schema(f).names == COLUMNS
    fingerprint = archive.model_fingerprint(model)
    assert set(archive.read_rows(run["output"], ["model"]).column("model").to_pylist()) == {
        fingerprint}
    settings = storage.read_json(storage.join(run["output"], "run.json"))
    assert settings["model_fingerprint"] == fingerprint
    assert settings["questions"] == [QUESTION] and settings["video_stride"] == STRIDE


@pytest.mark.slow
def test_summary_counts_outcomes_and_gives_examples(archive_run):
    run = archive_run
    summary = storage.read_json(storage.join(run["output"], "summary.json"))
    rows = archive.read_rows(run["output"]).to_pylist()
    n_files = len(run["photos"]) + 4
    assert summary["files"] == summary["files_with_rows"] == n_files
    outcomes = summary["outcomes"]
    assert outcomes["error"] == 3 and sum(outcomes.values()) == n_files
    assert outcomes["no person found"] >= 1 and outcomes["people found"] >= len(COCO) + 1
    assert summary["people"] == sum(1 for r in rows if r["error"] is None)
    assert len({e["source"] for e in summary["examples"]}) == 3  # from 3 different files
    for example in summary["examples"]:
        assert set(example) == {"source", "frame", "person", "caption"} and example["caption"]
    assert len(summary["errors"]) == 3
    assert summary["this_run"]["files"] == n_files and summary["this_run"]["workers"] >= 1
    assert "done: " in run["log"] and "e.g. " in run["log"]


@pytest.mark.slow
def test_overlays_are_written_for_every_photo_and_sampled_frame(archive_run):
    import cv2
    import numpy as np

    run = archive_run
    rows = archive.read_rows(run["output"]).to_pylist()
    frames = sorted({r["frame"] for r in rows if r["source"] == run["video"]})
    overlays = archive.list_inputs(f"{run['root']}/overlays")
    expected = {f"{run['root']}/overlays/{p[len(run['input']) + 1:].rsplit('.', 1)[0]}.jpg"
                for p in run["photos"]}
    expected |= {f"{run['root']}/overlays/videos/two_people_indoor_f{f:06d}.jpg" for f in frames}
    assert set(overlays) == expected
    image = cv2.imdecode(np.frombuffer(storage.read_bytes(overlays[0]), np.uint8),
                         cv2.IMREAD_COLOR)
    assert image is not None and image.ndim == 3


@pytest.mark.slow
def test_a_second_run_adds_nothing(job, archive_run):
    run = archive_run
    parts = parts_of(run["output"])
    n_rows = archive.read_rows(run["output"]).num_rows
    code, log = run_main(job, *run["args"])
    assert code == 0, log[-3000:]
    n_files = len(run["photos"]) + 4
    assert f"({n_files} already done, 0 to go, in 0 parts)" in log
    assert parts_of(run["output"]) == parts
    assert archive.read_rows(run["output"]).num_rows == n_rows
    assert storage.read_json(storage.join(run["output"], "summary.json"))["this_run"][
        "files"] == 0


@pytest.mark.slow
def test_other_questions_into_the_same_output_are_refused_or_written_separately(job, archive_run,
                                                                                model):
    run = archive_run
    parts = parts_of(run["output"])
    settings = storage.read_json(storage.join(run["output"], "run.json"))
    photo = f"{run['input']}/coco/{COCO[1]}"
    other = ["--model", model, "--input", photo, "--output", run["output"], "--question",
             OTHER_QUESTION, "--video-stride", str(STRIDE)]
    code, log = run_main(job, *other)
    assert code == 2
    assert run["output"] in log and "another set of questions" in log
    assert "--on-change separate" in log
    assert parts_of(run["output"]) == parts
    assert storage.read_json(storage.join(run["output"], "run.json")) == settings
    assert storage.list_folders(run["output"]) == ["parts"]  # no runs/ folder

    code, log = run_main(job, *other, "--on-change", "separate")
    assert code == 0, log[-3000:]
    (run_id,) = storage.list_folders(storage.join(run["output"], "runs"))
    assert re.fullmatch(r"[0-9a-f]{12}", run_id)
    separate = storage.join(run["output"], "runs", run_id)
    assert storage.read_json(storage.join(separate, "run.json"))["questions"] == [OTHER_QUESTION]
    assert storage.exists(storage.join(separate, "summary.json"))
    rows = archive.read_rows(separate).to_pylist()
    assert rows and {r["source"] for r in rows} == {photo}
    assert all([a["question"] for a in r["answers"]] == [OTHER_QUESTION] for r in rows)
    assert parts_of(run["output"]) == parts  # the first run's rows are untouched

    code, log = run_main(job, *other, "--on-change", "separate")  # resumes the separate run
    assert code == 0 and f"-> {separate} (1 already done, 0 to go" in log
    assert storage.list_folders(storage.join(run["output"], "runs")) == [run_id]
