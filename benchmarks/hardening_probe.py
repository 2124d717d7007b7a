"""The hardening probe (issue 26): every entry point given bad input, as a careless or hostile
user would. Runs each job as a user does, records the exit code and the first error line, and
says whether the outcome is a clear error. Prints a table and writes JSON.

    .venv/bin/python benchmarks/hardening_probe.py

Each row names the test that keeps it so. The planted-checkpoint case (a pickle in a run's
DeepSpeed state) needs a training to resume; tests/training/test_safe_checkpoint.py covers it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_results

SHARED = ROOT.parent / "shared" / "data"
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


class RunsACommand:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def job(name: str, *args: str, env: dict | None = None) -> tuple[int, str]:
    out = subprocess.run([sys.executable, str(ROOT / "jobs" / f"{name}.py"), *args],
                         capture_output=True, text=True, timeout=600, check=False,
                         env={**os.environ, "RAY_AUTH_MODE": "disabled", **(env or {})})
    lines = [line for line in (out.stdout + out.stderr).splitlines()
             if "ERROR" in line or "error:" in line or "Error" in line]
    return out.returncode, (lines[-1] if lines else (out.stdout + out.stderr).strip()[-300:])


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="probe"))
    rows: list[dict] = []

    def case(item: str, what: str, code_and_line: tuple[int, str], test: str,
             expect_ok: bool = False) -> None:
        code, line = code_and_line
        clear = code == 2 and "Traceback" not in line
        rows.append({"item": item, "input": what, "exit": code, "message": line[:220],
                     "outcome": "ok" if expect_ok and code == 0 else
                     ("clear error" if clear else "NOT CLEAR"), "test": test})
        print(f"[{rows[-1]['outcome']}] {what}: exit {code}: {line[:160]}", flush=True)

    # A small dataset and a model folder to damage.
    data = tmp / "ds"
    code, line = job("render_dataset", "--output", str(data), "--num-poses", "60",
                     "--image-size", "32", "--shard-size", "30", "--num-cpus", "4")
    assert code == 0, line
    from p2l3d_core.models import Student, save_pretrained
    from p2l3d_core.models.config import preset

    run = tmp / "run"
    save_pretrained(Student(preset("tiny", 32)), run / "student")

    # 2. silent wrong results
    case("2", "evaluate --set test=OTHER", job("evaluate", "--run", str(run), "--set",
                                                f"test={data}"), "tests/jobs/test_evaluate_job.py")
    case("2", "evaluate --set ../../x=OTHER", job("evaluate", "--run", str(run), "--set",
                                                   f"../../x={data}"),
         "tests/jobs/test_evaluate_job.py")
    case("2", "distill --real ../x=bvh:FILE", job("distill", "--output", str(tmp / "r2"),
                                                   "--real", "../x=bvh:/x.bvh"),
         "tests/jobs/test_distill_job.py")
    case("2", "distill --real NAME=missing file", job("distill", "--output", str(tmp / "r3"),
                                                       "--real", "walk=bvh:/no/such.bvh"),
         "tests/jobs/test_distill_job.py")
    missing_brace = tmp / "brace.bvh"
    missing_brace.write_text(TINY_BVH.replace("      OFFSET 0 3 0\n    }\n",
                                              "      OFFSET 0 3 0\n"))
    case("2", "BVH with one '}' missing", job("render_dataset", "--output", str(tmp / "b1"),
                                              "--source", f"bvh:{missing_brace}"),
         "tests/poses/test_bvh.py")
    cut = tmp / "cut.bvh"
    cut.write_text(TINY_BVH.rsplit("10 20 30", 1)[0])
    case("2", "BVH cut at a line boundary", job("render_dataset", "--output", str(tmp / "b2"),
                                                "--source", f"bvh:{cut}"),
         "tests/poses/test_bvh.py")
    case("2", "--num-captions 0", job("render_dataset", "--output", str(tmp / "c0"),
                                      "--num-captions", "0"),
         "tests/jobs/test_render_dataset_job.py")
    case("2", "--output ''", job("render_dataset", "--output", ""),
         "tests/jobs/test_render_dataset_job.py")

    # 3. datasets a reader can trust
    outside = tmp / "outside"
    shutil.copytree(data, outside)
    manifest = json.loads((outside / "manifest.json").read_text())
    manifest["shards"][0]["path"] = "../ds/shards/part-00000.parquet"
    (outside / "manifest.json").write_text(json.dumps(manifest))
    case("3", "manifest listing ../ a shard outside", job("evaluate", "--run", str(run), "--data",
                                                          str(outside)),
         "tests/dataset/test_pipeline.py")
    damaged = tmp / "damaged"
    shutil.copytree(data, damaged)
    shard = damaged / "shards" / "part-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:100])
    case("3/4", "a cut shard (evaluate)", job("evaluate", "--run", str(run), "--data",
                                              str(damaged)), "tests/dataset/test_pipeline.py")
    case("3/4", "a cut shard (train_teacher)", job("train_teacher", "--data", str(damaged),
                                                   "--output", str(tmp / "t1"), "--num-cpus", "4"),
         "tests/dataset/test_pipeline.py")
    shard.unlink()
    case("3/4", "a missing shard (evaluate)", job("evaluate", "--run", str(run), "--data",
                                                  str(damaged)), "tests/dataset/test_pipeline.py")

    # 4. one-line errors
    afile = tmp / "notes.txt"
    afile.write_text("mine")
    case("4", "--output an existing file", job("render_dataset", "--output", str(afile)),
         "tests/jobs/test_render_dataset_job.py")
    case("4", "s3:// without reachable settings",
         job("render_dataset", "--output", "s3://bucket/x",
             env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}), "tests/test_storage.py")
    if (SHARED / "poses/mmpose/h36m/test_h36m_body3d.npz").exists():
        h36m = tmp / "h36m"
        h36m.mkdir()
        shutil.copy(SHARED / "poses/mmpose/h36m/test_h36m_body3d.npz", h36m)
        (h36m / "cameras.pkl").write_bytes(pickle.dumps({("S1", 1): RunsACommand(
            str(tmp / "pwned"))}))
        case("4", "a refused pickle in cameras.pkl",
             job("render_dataset", "--output", str(tmp / "h"), "--source",
                 f"h36m:{h36m / 'test_h36m_body3d.npz'}"),
             "tests/jobs/test_render_dataset_job.py")
    binary = tmp / "binary.bvh"
    binary.write_bytes(bytes(range(256)) * 4)
    case("4", "a binary BVH", job("render_dataset", "--output", str(tmp / "b3"), "--source",
                                  f"bvh:{binary}"), "tests/poses/test_bvh.py")
    nan = tmp / "word.bvh"
    nan.write_text(TINY_BVH.replace("10 20 30", "10 twenty 30"))
    case("4", "a non-number in a BVH", job("render_dataset", "--output", str(tmp / "b4"),
                                           "--source", f"bvh:{nan}"), "tests/poses/test_bvh.py")
    bad_json = tmp / "badjson"
    shutil.copytree(run, bad_json)
    (bad_json / "student" / "config.json").write_text('{"format": "p2l3d-model/2", "kind": ')
    case("4", "bad JSON in a model's config.json", job("evaluate", "--run", str(bad_json),
                                                       "--data", str(data)),
         "tests/models/test_models.py")
    no_tok = tmp / "notok"
    shutil.copytree(run, no_tok)
    for path in (no_tok / "student").rglob("tokenizer*"):
        path.unlink()
    case("4", "a model folder without tokenizer files", job("evaluate", "--run", str(no_tok),
                                                            "--data", str(data)),
         "tests/models/test_models.py")
    newer = tmp / "newer"
    shutil.copytree(run, newer)
    config = json.loads((newer / "student" / "config.json").read_text())
    (newer / "student" / "config.json").write_text(json.dumps({**config,
                                                               "format": "p2l3d-model/9"}))
    case("4", "a model folder from a newer format", job("evaluate", "--run", str(newer),
                                                        "--data", str(data)),
         "tests/models/test_models.py")
    case("4", "--concurrency 0", job("render_dataset", "--output", str(tmp / "c1"),
                                     "--concurrency", "0"),
         "tests/jobs/test_render_dataset_job.py")
    case("4", "--eval-poses -5", job("evaluate", "--run", str(run), "--data", str(data),
                                     "--eval-poses", "-5"), "tests/jobs/test_evaluate_job.py")
    no_test = tmp / "notest"
    shutil.copytree(data, no_test)
    m = json.loads((no_test / "manifest.json").read_text())
    for entry in m["shards"]:  # every row moved out of the test split, manifest kept in step
        path = no_test / entry["path"]
        table = pq.read_table(path)
        table = table.set_column(table.schema.get_field_index("split"), "split",
                                 pa.array(["train"] * table.num_rows))
        pq.write_table(table, path, compression="zstd")
        data_bytes = path.read_bytes()
        entry.update(bytes=len(data_bytes), sha256=hashlib.sha256(data_bytes).hexdigest())
    (no_test / "manifest.json").write_text(json.dumps(m))
    case("4", "a dataset with no test rows", job("evaluate", "--run", str(run), "--data",
                                                 str(no_test)), "tests/evaluation/test_run.py")

    clear = sum(r["outcome"] in ("clear error", "ok") for r in rows)
    print(f"\n{clear} of {len(rows)} inputs end in a clear error or ok")
    write_results("hardening_probe", {"rows": rows})
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if clear == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
