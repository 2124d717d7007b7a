"""Training-step cost of the teacher and the distilled student, one process, one thread.

What one Ray Train worker does per step, without Ray and DeepSpeed around it: build the inputs
from a batch of dataset rows (PNG decoding, keypoint features, questions), the forward pass with
every loss, backward and an AdamW step. The student step includes the frozen teacher's forward
(its targets) as in ``loops.train_student``: both take their step's inputs from
``training/steps.py``. Run it before and after a change to the models or the losses; prints a
table and writes JSON to benchmarks/results/train_step.json.

    .venv/bin/python benchmarks/train_step.py --data RUN/dataset [--model small --steps 20]

Each timed step sees rows it has not seen before in this process, so the frozen text encoder's
sentence cache and the student's cache of teacher targets (``steps.TeacherTargets``) are as
cold as in an epoch's first pass. Later epochs are cheaper: ``--warm`` times the same rows a
second time.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2l3d_core.dataset.shards import load_table, read_manifest
from p2l3d_core.models.config import preset
from p2l3d_core.models.pose_models import Student, Teacher
from p2l3d_core.training.batches import labelled_mask
from p2l3d_core.training.config import TrainConfig
from p2l3d_core.training.runner import with_corpus_vocab
from p2l3d_core.training.steps import TeacherTargets, student_step, teacher_step


def rows_as_batch(table, start: int, size: int) -> dict[str, np.ndarray]:
    frame = table.slice(start, size).to_pandas()
    return {c: frame[c].to_numpy() for c in frame.columns}


def subset(batch: dict, keep: np.ndarray) -> dict:
    return {k: v[keep] for k, v in batch.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a rendered dataset (local folder or s3://)")
    p.add_argument("--model", default="small", help="model preset (tiny, small, base)")
    p.add_argument("--batch-size", type=int, default=64, help="rows per step (a worker's batch)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per stage")
    p.add_argument("--labelled-fraction", type=float, default=0.111)
    p.add_argument("--warm", action="store_true", help="time a second pass over the same rows")
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    image_size = read_manifest(args.data)["config"]["image_size"]
    cfg = with_corpus_vocab(preset(args.model, image_size, "image+keypoints", "image+keypoints"),
                            args.data)
    teacher, student = Teacher(cfg), Student(cfg)
    student.adopt_language(teacher)
    targets = TeacherTargets(teacher)
    table = load_table(args.data, "train")
    need = args.batch_size * args.steps
    if len(table) < need + args.batch_size:
        raise SystemExit(f"{args.data}: {len(table)} training rows, the run needs {need + args.batch_size}")

    labelled_rows = subset(rows_as_batch(table, 0, len(table)), labelled_mask(
        table.column("pose_id").to_pylist(), args.labelled_fraction))
    teacher_batches = [subset(labelled_rows, np.arange(i * args.batch_size, (i + 1) * args.batch_size))
                       for i in range(min(args.steps + 1, len(labelled_rows["pose_id"]) // args.batch_size))]
    student_batches = [rows_as_batch(table, i * args.batch_size, args.batch_size)
                       for i in range(args.steps + 1)]

    t_opt = torch.optim.AdamW([q for q in teacher.parameters() if q.requires_grad], 1e-3)
    s_opt = torch.optim.AdamW([q for q in student.parameters() if q.requires_grad], 1e-3)

    # The loops' defaults for every loss weight, as a run of jobs/distill.py has them.
    train_cfg = TrainConfig(model=cfg, labelled_fraction=args.labelled_fraction)

    def teacher_update(b: dict) -> None:
        out = teacher(**teacher_step(b, train_cfg, rng))
        t_opt.zero_grad()
        out["loss"].backward()
        t_opt.step()

    def student_update(b: dict) -> None:
        out = student(**student_step(b, train_cfg, rng, targets))
        s_opt.zero_grad()
        out["loss"].backward()
        s_opt.step()

    results = []
    for name, step, batches in (("teacher", teacher_update, teacher_batches),
                                ("student", student_update, student_batches)):
        if name == "student":
            teacher.eval()  # frozen, as loops.train_student loads it
        step(batches[0])  # first call: lazy allocations, not timed
        timed = batches[1:]
        for _ in range(2 if args.warm else 1):
            t0 = time.perf_counter()
            for b in timed:
                step(b)
            seconds = (time.perf_counter() - t0) / len(timed)
        results.append({"stage": name, "steps": len(timed), "batch_size": args.batch_size,
                        "seconds_per_step": seconds, "rows_per_s": args.batch_size / seconds})
    print(f"{'stage':<10}{'steps':>7}{'s/step':>10}{'rows/s':>10}")
    for r in results:
        print(f"{r['stage']:<10}{r['steps']:>7}{r['seconds_per_step']:>10.3f}{r['rows_per_s']:>10.1f}")
    out = Path(__file__).resolve().parent / "results" / "train_step.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "args": vars(args),
                               "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
