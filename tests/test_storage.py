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
