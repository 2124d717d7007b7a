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

On a GPU (``--device cuda``) the models and inputs are bf16, as a Ray Train worker's DeepSpeed
engine has them there, and the table adds the peak GPU memory (of the bf16 model, its gradients
and torch AdamW's state: DeepSpeed's float32 master weights come on top in a run):
what the ``paper`` preset's epochs would cost, measured without Ray and DeepSpeed (the device
machines lack both; ``benchmarks/device_check.sh`` runs this there). ``--text-model FOLDER
--random-weights`` builds the frozen text encoder from a folder's config and tokenizer alone:
timings need no trained weights, and the weights package is too large to carry there.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2l3d_core.dataset.shards import load_table, read_manifest
from p2l3d_core.models.config import preset
from p2l3d_core.models.pose_models import Student, Teacher
from p2l3d_core.training.config import TrainConfig
from p2l3d_core.training.runner import with_corpus_vocab
from p2l3d_core.training.steps import TeacherTargets, student_step, teacher_step


def rows_as_batch(table, start: int, size: int) -> dict[str, np.ndarray]:
    frame = table.slice(start, size).to_pandas()
    return {c: frame[c].to_numpy() for c in frame.columns}


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a rendered dataset (local folder or s3://)")
    p.add_argument("--model", default="small", help="model preset (tiny, small, base)")
    p.add_argument("--batch-size", type=int, default=64, help="rows per step (a worker's batch)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per stage")
    p.add_argument("--labelled-fraction", type=float, default=0.111)
    p.add_argument("--pool-captions", type=int, default=0,
                   help="pool rows a student batch learns the teacher's caption of (quickstart 16, "
                        "paper 32)")
    p.add_argument("--warm", action="store_true", help="time a second pass over the same rows")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="model and input dtype (auto: bfloat16 on a GPU, float32 on CPU, as "
                        "training)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (a Ray Train worker has one)")
    p.add_argument("--text-model", default=None,
                   help="the text encoder's folder (default: the model preset's, all-MiniLM-L6-v2)")
    p.add_argument("--random-weights", action="store_true",
                   help="build every model from its config alone: no trained weights are read")
    p.add_argument("--out", type=Path,
                   default=Path(__file__).resolve().parent / "results" / "train_step.json",
                   help="where the JSON goes")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: this torch ({torch.__version__}) sees no GPU")
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}.get(
        args.dtype, torch.bfloat16 if device.type == "cuda" else torch.float32)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    image_size = read_manifest(args.data)["config"]["image_size"]
    cfg = preset(args.model, image_size, "image+keypoints", "image+keypoints")
    if args.text_model:
        cfg = replace(cfg, text=replace(cfg.text, pretrained=args.text_model))
    cfg = with_corpus_vocab(cfg, args.data)
    teacher = Teacher(cfg, weights=not args.random_weights).to(device, dtype)
    student = Student(cfg, weights=not args.random_weights).to(device, dtype)
    student.adopt_language(teacher)
    targets = TeacherTargets(teacher)  # the frozen teacher, float32 as loops.train_student has it
    table = load_table(args.data, "train")
    need = args.batch_size * args.steps
    if len(table) < need + args.batch_size:
        raise SystemExit(f"{args.data}: {len(table)} training rows, the run needs "
                         f"{need + args.batch_size}")

    # The teacher treats every row it is given as labelled (a run gives it the labelled part
    # alone), so both stages take the same batches: a small dataset then serves both. The
    # student sees labelled and pool rows, split by --labelled-fraction as in a run.
    batches = [rows_as_batch(table, i * args.batch_size, args.batch_size)
               for i in range(args.steps + 1)]

    t_opt = torch.optim.AdamW([q for q in teacher.parameters() if q.requires_grad], 1e-3)
    s_opt = torch.optim.AdamW([q for q in student.parameters() if q.requires_grad], 1e-3)

    # The loops' defaults for every loss weight, as a run of jobs/distill.py has them.
    train_cfg = TrainConfig(model=cfg, labelled_fraction=args.labelled_fraction,
                            pool_captions=args.pool_captions)
    teacher_cfg = replace(train_cfg, labelled_fraction=1.0)  # see batches

    def teacher_update(b: dict) -> None:
        out = teacher(**teacher_step(b, teacher_cfg, rng, device, dtype))
        t_opt.zero_grad()
        out["loss"].backward()
        t_opt.step()

    def student_update(b: dict) -> None:
        out = student(**student_step(b, train_cfg, rng, targets, device, dtype))
        s_opt.zero_grad()
        out["loss"].backward()
        s_opt.step()

    results = []
    for name, step in (("teacher", teacher_update), ("student", student_update)):
        if name == "student":
            # Frozen, float32 and outside DeepSpeed, as loops.train_student loads it: no
            # gradients or optimizer state (else they count in the student's peak memory), and
            # the sentence cache the teacher stage filled emptied (the student's rows are new
            # to this process, as the module says).
            t_opt.state.clear()
            teacher.zero_grad(set_to_none=True)
            teacher.requires_grad_(False).eval().float()
            teacher.text.sentence_cache.clear()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        step(batches[0])  # first call: lazy allocations, not timed
        timed = batches[1:]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(2 if args.warm else 1):
            sync(device)
            t0 = time.perf_counter()
            for b in timed:
                step(b)
            sync(device)
            seconds = (time.perf_counter() - t0) / len(timed)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        results.append({"stage": name, "steps": len(timed), "batch_size": args.batch_size,
                        "seconds_per_step": seconds, "rows_per_s": args.batch_size / seconds,
                        "peak_gpu_gib": peak})
    print(f"{'stage':<10}{'steps':>7}{'s/step':>10}{'rows/s':>10}{'peak GiB':>10}")
    for r in results:
        peak = "-" if r["peak_gpu_gib"] is None else f"{r['peak_gpu_gib']:.2f}"
        print(f"{r['stage']:<10}{r['steps']:>7}{r['seconds_per_step']:>10.3f}{r['rows_per_s']:>10.1f}{peak:>10}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.platform()
    args.out.write_text(json.dumps({"machine": machine, "torch": torch.__version__,
                                    "dtype": str(dtype),
                                    "args": {**vars(args), "out": str(args.out)},
                                    "results": results},
                                   indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
