"""storage: local and S3 (moto) behind one interface."""

import pytest

from p2l3d_core import storage


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("s3_bucket") + "/root"


def test_write_read_list_delete(root):
    uri = storage.join(root, "a", "b.json")
    assert not storage.exists(uri)
    storage.write_json(uri, {"x": 1})
    assert storage.exists(uri) and storage.read_json(uri) == {"x": 1}
    assert storage.list_files(storage.join(root, "a")) == [uri]
    storage.delete(uri)
    assert not storage.exists(uri)


def test_folder_round_trip(root, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "one.txt").write_text("1")
    (src / "sub" / "two.bin").write_bytes(b"\x00\x01")
    storage.upload_folder(str(src), storage.join(root, "model"))
    out = storage.download_folder(storage.join(root, "model"), str(tmp_path / "dst"))
    assert (tmp_path / "dst" / "one.txt").read_text() == "1"
    assert (tmp_path / "dst" / "sub" / "two.bin").read_bytes() == b"\x00\x01"
    assert out == str(tmp_path / "dst")


def test_bad_uris_are_named(s3_server):
    with pytest.raises(ValueError, match="unsupported storage URI 'gs://x'"):
        storage.resolve("gs://x")
    with pytest.raises(FileNotFoundError, match="nothing found under"):
        storage.download_folder("s3://no-such-bucket-xyz/m", "/tmp/none")


def test_absolute_makes_local_paths_absolute_and_keeps_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.absolute("a/b") == str(tmp_path / "a" / "b")
    assert storage.absolute("s3://bucket/a") == "s3://bucket/a"


def test_an_unreachable_store_is_one_line_naming_the_settings(monkeypatch):
    """pyarrow's own error came minutes into a job, as a traceback."""
    from p2l3d_core.storage import check_reachable

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3",
                "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with pytest.raises(ValueError) as err:
        check_reachable("s3://bucket/run")
    text = str(err.value)
    assert text.startswith("cannot reach s3://bucket/run: ") and "\n" not in text
    assert "(set here: AWS_ENDPOINT_URL, AWS_REGION)" in text
    check_reachable("/a/local/path")  # local paths are not checked


def test_a_reachable_store_passes(s3_server):
    from p2l3d_core.storage import check_reachable

    check_reachable("s3://no-such-bucket-yet/run")  # reachable; the bucket is made on write
