"""jobs/describe.py as users run it: a tiny untrained student saved to a folder, real photos, a
real video and a COCO keypoints file from ../shared/data, and a file that is not an image.

One run goes through a fresh interpreter, as a user types it; the other checks call ``main``
in-process (the imports cost seconds each time)."""

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from p2l3d_core.models import Student, save_pretrained
from p2l3d_core.models.config import preset

REPO = Path(__file__).resolve().parents[2]
JOBS = REPO / "jobs"
QUESTION = "Is the left knee bent?"
PERSON_FIELDS = {"source", "frame", "person", "bbox", "score", "keypoints", "caption", "answers"}



@pytest.fixture(scope="module")
def model(tmp_path_factory, one_torch_thread) -> Path:
    torch.manual_seed(1)
    return save_pretrained(Student(preset("tiny", 32)), tmp_path_factory.mktemp("m") / "student")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, shared_file) -> dict[str, Path]:
    """A photo of two people, their COCO annotations (and an unlabelled third), a 72-frame
    video of two people and a text file named like a photo."""
    folder = tmp_path_factory.mktemp("inputs")
    photo = shutil.copy(shared_file("poses/mmpose/coco/000000040083.jpg"), folder / "photo.jpg")
    coco = json.loads(shared_file("poses/mmpose/coco/test_coco.json").read_text())
    people = folder / "people.json"
    people.write_text(json.dumps(
        {"annotations": [a for a in coco["annotations"] if a["image_id"] == 40083]}))
    clip = shutil.copy(shared_file("videos/two_people_indoor.mp4"), folder / "clip.mp4")
    bad = folder / "notes.jpg"
    bad.write_text("these are my notes, not a photo\n")
    return {"photo": Path(photo), "people": people, "clip": Path(clip), "bad": bad}


@pytest.fixture
def call_main(capsys, caplog):
    """``call_main(job, *argv)`` -> (exit code, stdout, everything printed or logged)."""

    def call(job, *argv):
        caplog.set_level(logging.INFO)
        try:
            code = job.main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse's refusals and --help
            code = exit_.code
        out = capsys.readouterr()
        return code, out.out, out.out + out.err + caplog.text

    return call


@pytest.fixture(scope="module")
def run_as_user(model, inputs, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The job run once, as a user types it, on all four files with --json and --overlay."""
    overlay = tmp_path_factory.mktemp("out") / "overlays"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(JOBS / "describe.py"), "--model", str(model), str(inputs["photo"]),
         str(inputs["people"]), str(inputs["clip"]), str(inputs["bad"]), "--json", "--overlay",
         str(overlay), "--video-stride", "36", "--question", QUESTION],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env, check=False)
    return done, overlay


def _json_rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_every_file_is_described_and_the_bad_one_is_an_error(run_as_user, inputs):
    done, overlay = run_as_user
    assert done.returncode == 1, done.stdout + done.stderr
    rows = _json_rows(done.stdout)
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)

    photo = by_source.pop(str(inputs["photo"]))
    assert [r["person"] for r in photo] == [0, 1] and {r["frame"] for r in photo} == {0}
    video = by_source.pop(str(inputs["clip"]))
    assert sorted({r["frame"] for r in video}) == [0, 36]
    assert {r["person"] for r in video} == {0, 1}  # track ids
    (error,) = by_source.pop(str(inputs["bad"]))
    assert set(error) == {"source", "error"} and "not an image" in error["error"]
    # The keypoints file: one row a usable annotated person, labelled file#annotation id; the
    # annotation with no labelled joints is an error row naming it.
    (unusable,) = by_source.pop(f"{inputs['people']}#1202706")
    assert set(unusable) == {"source", "error"} and "only 0 of 17 joints" in unusable["error"]
    assert sorted(by_source) == [f"{inputs['people']}#198196", f"{inputs['people']}#230195"]

    for row in photo + video + [r for rs in by_source.values() for r in rs]:
        assert set(row) == PERSON_FIELDS
        assert len(row["keypoints"]) == 17 and row["caption"]
        (answer,) = row["answers"]
        assert answer["question"] == QUESTION and answer["family"] == "joint_bend"
    # The bad file is named in the log too.
    assert f"{inputs['bad']}: not an image" in done.stdout + done.stderr

    written = sorted(p.name for p in overlay.iterdir())
    assert written == ["clip_000000.jpg", "clip_000036.jpg", "photo.jpg"]
    for path in overlay.iterdir():
        assert path.stat().st_size > 1000


def test_json_output_is_json_lines_only(run_as_user):
    done, _ = run_as_user
    for line in done.stdout.splitlines():
        json.loads(line)


def test_plain_output_names_people_and_answers(describe_job, call_main, model, inputs):
    code, out, _ = call_main(describe_job, "--model", model, inputs["photo"], "--question",
                             QUESTION, "--question", "What colour is the shirt?")
    assert code == 0
    assert f"{inputs['photo']}: 2 people" in out
    assert out.count("Q: Is the left knee bent?") == 2
    assert "similarity" in out and out.count("(free form)") == 2


def test_a_keypoints_file_in_process(describe_job, call_main, model, inputs):
    code, out, everything = call_main(describe_job, "--model", model, inputs["people"], "--json")
    assert code == 1  # one annotated person could not be described
    rows = [json.loads(line) for line in out.splitlines()]
    people = [r for r in rows if "error" not in r]
    assert len(people) == 2 and all(r["answers"] == [] for r in people)
    # The annotation with no labelled joints is reported, naming it.
    assert f"{inputs['people']}#1202706: only 0 of 17 joints" in everything


def test_an_unusable_person_of_a_keypoints_file_gets_a_json_error_row(describe_job, call_main,
                                                                       model, inputs):
    _, out, _ = call_main(describe_job, "--model", model, inputs["people"], "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert any(r.get("source") == f"{inputs['people']}#1202706" and "error" in r for r in rows)


def test_questions_lists_the_families(describe_job, call_main, model):
    from p2l3d_core.models.answers import Vocabulary

    code, out, _ = call_main(describe_job, "--model", model, "--questions")
    assert code == 0
    lines = out.strip().splitlines()
    families = [line.split(":", 1)[0] for line in lines]
    assert sorted(families) == sorted(Vocabulary.current().families)
    assert all(line.split(":", 1)[1].strip() for line in lines)
    assert "joint_bend: " in out


def test_help(describe_job, call_main):
    code, out, _ = call_main(describe_job, "--help")
    assert code == 0
    for flag in ("--model", "--question", "--video-stride", "--overlay", "--json", "--questions"):
        assert flag in out


@pytest.mark.parametrize(("argv", "message"), [
    ([], "give at least one FILE (or --questions)"),
    (["--video-stride", "0", "x.jpg"], "must be >= 1, got 0"),
])
def test_arguments_are_checked(describe_job, call_main, model, argv, message):
    code, _, everything = call_main(describe_job, "--model", model, *argv)
    assert code == 2 and message in everything


def test_a_missing_model_folder_is_named(describe_job, call_main, tmp_path, inputs):
    missing = tmp_path / "no_such_model"
    code, _, everything = call_main(describe_job, "--model", missing, inputs["people"])
    assert code == 2
    assert f"{missing} is not a saved model: no config.json" in everything


def test_a_bad_question_stops_before_any_file(describe_job, call_main, model, inputs):
    code, out, everything = call_main(describe_job, "--model", model, inputs["people"],
                                      "--question", "   ")
    assert code == 2 and "question 1: empty" in everything
    assert "people.json#" not in out


def test_missing_and_unknown_files_fail_and_the_others_go_on(describe_job, call_main, model,
                                                             inputs, tmp_path):
    other = tmp_path / "table.csv"
    other.write_text("a,b\n")
    code, out, _ = call_main(describe_job, "--model", model, tmp_path / "gone.jpg",
                             other, inputs["people"], "--json")
    assert code == 1
    rows = _json_rows(out)
    errors = {r["source"]: r["error"] for r in rows if "error" in r}
    assert errors[str(tmp_path / "gone.jpg")].endswith("no such file")
    assert "unknown file type '.csv'" in errors[str(other)]
    assert len([r for r in rows if "error" not in r]) == 2
