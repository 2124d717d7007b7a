"""archive.py (the caption output's layout and exactly-once record) and batch.plan_groups, on a
real temporary folder: no Ray, no model."""

import pyarrow as pa
import pytest

from p2l3d_core import storage
from p2l3d_core.inference import archive
from p2l3d_core.inference.batch import plan_groups


def _row(source: str, frame: int = 0, person: int | None = 0, error: str | None = None) -> dict:
    if error is not None:
        return {"source": source, "frame": frame, "error": error, "model": "fp"}
    return {"source": source, "frame": frame, "person": person,
            "bbox": [1.0, 2.0, 30.0, 40.0], "keypoints": [[1.0, 2.0, 0.9]] * 17, "score": 0.8,
            "caption": "The person stands.",
            "answers": [{"question": "Is the left knee bent?", "matched_question": "q",
                         "family": "knee", "answer": "no", "sentence": "It is straight.",
                         "free_form": False, "similarity": 0.9}],
            "error": None, "model": "fp"}


@pytest.mark.parametrize("uri, kind", [
    ("a/b.jpg", "photo"), ("A/B.JPEG", "photo"), ("x.png", "photo"), ("x.webp", "photo"),
    ("x.bmp", "photo"), ("s3://b/v.mp4", "video"), ("v.MOV", "video"), ("v.avi", "video"),
    ("v.mkv", "video"), ("notes.txt", None), ("noext", None), ("dir.jpg/readme", None),
    ("archive.tar.gz", None)])
def test_kind_of_goes_by_the_suffix(uri, kind):
    assert archive.kind_of(uri) == kind


def test_list_inputs_is_recursive_sorted_and_skips_hidden_files(tmp_path):
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    for name in ("b.jpg", "a.png", "notes.txt", "sub/c.mp4", "sub/deeper/d.jpeg", ".DS_Store",
                 "sub/.hidden.jpg"):
        (root / name).write_bytes(b"x")
    files = archive.list_inputs(str(root))
    assert files == sorted(str(root / n) for n in ("a.png", "b.jpg", "notes.txt", "sub/c.mp4",
                                                    "sub/deeper/d.jpeg"))
    # one file is its own input list
    assert archive.list_inputs(str(root / "b.jpg")) == [str(root / "b.jpg")]


def test_list_inputs_refuses_a_missing_or_empty_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        archive.list_inputs(str(tmp_path / "nope"))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / ".only_hidden").write_text("x")
    with pytest.raises(FileNotFoundError, match="holds no files"):
        archive.list_inputs(str(tmp_path / "empty"))


def test_part_ids_are_stable_and_independent_of_order(tmp_path):
    a = ["/in/a.jpg", "/in/b.jpg", "/in/c.png"]
    assert archive.part_id(a) == archive.part_id(list(reversed(a))) == archive.part_id(a)
    assert archive.part_id(a) != archive.part_id(a[:2])
    assert archive.part_id(["/in/a.jpg"]) != archive.part_id(["/in/b.jpg"])
    uri = archive.part_uri(str(tmp_path), a)
    assert uri == str(tmp_path / "parts" / f"part-{archive.part_id(a)}.parquet")


def test_write_part_then_read_rows_and_done_sources_round_trip(tmp_path):
    out = str(tmp_path / "out")
    assert archive.read_rows(out).num_rows == 0
    assert archive.read_rows(out).schema == archive.SCHEMA
    assert archive.read_rows(out, ["source"]).column_names == ["source"]
    assert archive.done_sources(out) == set()

    group1 = ["/in/a.jpg", "/in/b.jpg"]
    rows1 = [_row("/in/a.jpg", person=0), _row("/in/a.jpg", person=1),
             _row("/in/b.jpg", error="no person found")]
    uri = archive.write_part(out, group1, rows1)
    assert uri == archive.part_uri(out, group1) and storage.exists(uri)
    group2 = ["/in/v.mp4"]
    archive.write_part(out, group2, [_row("/in/v.mp4", frame=f, person=t)
                                     for f in (0, 24) for t in (3, 5)])

    table = archive.read_rows(out)
    assert table.schema == archive.SCHEMA and table.num_rows == 7
    rows = table.to_pylist()
    first = next(r for r in rows if r["source"] == "/in/a.jpg" and r["person"] == 1)
    assert first["bbox"] == [1.0, 2.0, 30.0, 40.0] and len(first["keypoints"]) == 17
    assert first["answers"][0]["answer"] == "no"
    assert first["answers"][0]["similarity"] == pytest.approx(0.9)
    b = next(r for r in rows if r["source"] == "/in/b.jpg")
    assert b["error"] == "no person found" and b["person"] is None and b["caption"] is None
    assert archive.done_sources(out) == {"/in/a.jpg", "/in/b.jpg", "/in/v.mp4"}

    # a retried group overwrites its own part: nothing is duplicated
    archive.write_part(out, list(reversed(group1)), rows1)
    assert len(storage.list_files(storage.join(out, "parts"))) == 2
    assert archive.read_rows(out).num_rows == 7


def test_write_part_refuses_rows_that_do_not_fit_the_schema(tmp_path):
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError)):
        archive.write_part(str(tmp_path), ["/a.jpg"], [{"source": "/a.jpg", "frame": "zero"}])
    assert not (tmp_path / "parts").exists() or not list((tmp_path / "parts").iterdir())


def test_settings_clash_names_what_changed(tmp_path):
    out = str(tmp_path / "out")
    settings = archive.run_settings("/m", "fp1", ["Is the left knee bent?"], 5)
    assert settings["format"] == archive.RUN_FORMAT
    assert archive.settings_clash(out, settings) is None  # no run yet
    storage.write_json(storage.join(out, "run.json"), settings)
    assert archive.settings_clash(out, settings) is None  # the same settings
    # another path to the same model weights is no clash: the fingerprint decides
    assert archive.settings_clash(out, {**settings, "model": "/elsewhere"}) is None

    clash = archive.settings_clash(out, {**settings, "model_fingerprint": "fp2"})
    assert clash.startswith(f"{out} holds rows of another model") and "'fp2'" in clash
    clash = archive.settings_clash(out, {**settings, "questions": ["Which way?"]})
    assert "another set of questions" in clash and "Which way?" in clash
    clash = archive.settings_clash(out, {**settings, "questions": []})
    assert "another set of questions" in clash
    clash = archive.settings_clash(out, {**settings, "video_stride": 24})
    assert "another video stride (5, now 24)" in clash

    (tmp_path / "out" / "run.json").write_text("{not json")
    assert archive.settings_clash(out, settings) == f"{storage.join(out, 'run.json')} is damaged"


def test_model_fingerprint_follows_config_and_weights(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text('{"a": 1}')
    (model / "model.safetensors").write_bytes(b"weights")
    first = archive.model_fingerprint(str(model))
    assert len(first) == 16 and first == archive.model_fingerprint(str(model))
    (model / "model.safetensors").write_bytes(b"other weights")
    assert archive.model_fingerprint(str(model)) != first


def test_plan_groups_puts_videos_alone_and_photos_in_groups():
    pending = ["/a.jpg", "/v1.mp4", "/b.png", "/c.txt", "/d.jpg", "/v2.MOV", "/e.jpg"]
    groups = plan_groups(pending, 2)
    assert groups == [["/v1.mp4"], ["/v2.MOV"], ["/a.jpg", "/b.png"], ["/c.txt", "/d.jpg"],
                      ["/e.jpg"]]
    assert sorted(s for g in groups for s in g) == sorted(pending)  # each file exactly once
    assert plan_groups(pending, 100) == [["/v1.mp4"], ["/v2.MOV"],
                                         ["/a.jpg", "/b.png", "/c.txt", "/d.jpg", "/e.jpg"]]
    assert plan_groups([], 4) == []
    assert plan_groups(["/v.mp4"], 4) == [["/v.mp4"]]
