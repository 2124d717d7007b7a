"""How far can answer distillation from a trained teacher take a 2D student, with no image?

A probe of the distillation ceiling, not a product model: a keypoint MLP (the student's
keypoint branch) with a copy of the teacher's answer head learns the teacher's answer
distributions over the question bank on every training pose (labelled and pool), then answers
the test questions. Options add an auxiliary lifting loss (predict the teacher's 3D keypoint
features from the 2D ones, 3D being plentiful) or change the KD temperature. Prints one line
per epoch and writes JSON to benchmarks/results/kd_probe.json.

    .venv/bin/python benchmarks/kd_probe.py --teacher RUN/teacher --data RUN/dataset \\
        [--lift-weight 10]

Measured 2026-11-25 with the quickstart teacher (2 cores, default 12 epochs, 1,000 test
poses; ~18 s an epoch): test depth accuracy 0.914 plain, 0.911 with ``--lift-weight 10``,
0.917 with ``--epochs 24``, against the teacher's own 0.950 on the same poses (true 3D in). For
scale, on 500 test poses of the evaluation: the image+keypoint student 0.880, the lifter pipeline
0.944.
2026-12-03, that day's teacher, the evaluation's 500 test poses: ``--lr-schedule constant`` (the
Ray Train stages' constant rate) ends at 0.881
(benchmarks/reports/quickstart-2026-12-03-loss-mix-and-lr.md).
2026-12-04, that day's teacher (runs/q24), ``--questions-per-pose 15``, 1,000 test poses: 0.893
after 12 epochs on the 18,282 training poses; 0.912 with ``--extra-pool`` of 46,000 more poses
(64,282, 12 epochs); 0.908 on the 18,282 alone for 42 epochs, the same number of steps. A 3.5x
larger pool is worth steps, not poses (benchmarks/reports/2026-12-04-pool-size-and-bn-fold.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2l3d_core.dataset.shards import load_table
from p2l3d_core.evaluation.methods import EvalSet
from p2l3d_core.evaluation.run import EVAL_COLUMNS
from p2l3d_core.language.questions import QUESTION_BANK
from p2l3d_core.models.answers import ANSWER_INDEX, Asked, family_mask
from p2l3d_core.models.geometry import with_geometry
from p2l3d_core.models.inputs import pose_inputs, pose_inputs_3d
from p2l3d_core.models.io import load_pretrained
from p2l3d_core.models.keypoints import KEYPOINT_FEATURES, KEYPOINT_FEATURES_3D, KeypointEncoder
from p2l3d_core.models.losses import answer_kd


@torch.no_grad()
def teacher_targets(teacher, data: EvalSet, batch: int = 256) -> tuple[torch.Tensor, ...]:
    """2D keypoint features, 3D keypoint features, the teacher's fused embeddings and its bank
    answer logits ``(N, len(QUESTION_BANK), answers)`` of every pose."""
    x2, x3, emb, logits = [], [], [], []
    for start in range(0, len(data), batch):
        rows = np.arange(start, min(start + batch, len(data)))
        b = data.batch(rows)
        i2, i3 = (pose_inputs(b, teacher.cfg.pose_input),
                  pose_inputs_3d(b, teacher.cfg.pose_input_3d))
        fused = teacher.encode_all(i2, i3)["fused"]
        emb.append(fused)
        state = with_geometry(fused, teacher.measure_geometry(i2, i3))
        logits.append(teacher.answer_logits(state, Asked.bank(len(rows)))
                      .view(len(rows), len(QUESTION_BANK), -1))
        x2.append(pose_inputs(b, "keypoints")["keypoints"])
        x3.append(pose_inputs_3d(b, "keypoints")["keypoints"])
    return torch.cat(x2), torch.cat(x3), torch.cat(emb), torch.cat(logits)


class Probe(nn.Module):
    """Keypoint MLP (optionally through a learned 3D estimate) -> embedding; the answer head."""

    def __init__(self, head: nn.Module, embed_dim: int, lift: bool):
        super().__init__()
        self.lifter = nn.Sequential(nn.Linear(KEYPOINT_FEATURES, 512), nn.LayerNorm(512), nn.GELU(),
                                    nn.Linear(512, KEYPOINT_FEATURES_3D)) if lift else None
        extra = KEYPOINT_FEATURES_3D if lift else 0
        self.encoder = KeypointEncoder(embed_dim, in_features=KEYPOINT_FEATURES + extra)
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.lifter is None:
            return self.encoder(x), None
        y = self.lifter(x)
        return self.encoder(torch.cat([x, y], -1)), y


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True, help="a trained teacher folder (RUN/teacher)")
    p.add_argument("--data", required=True, help="the rendered dataset it was trained on")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lift-weight", type=float, default=0.0,
                   help="auxiliary 3D-feature MSE; 0: none")
    p.add_argument("--temperature", type=float, default=1.0, help="answer KD temperature")
    p.add_argument("--questions-per-pose", type=int, default=32,
                   help="bank questions drawn per pose per step")
    p.add_argument("--test-poses", type=int, default=1000)
    p.add_argument("--lr-schedule", choices=("onecycle", "constant"), default="onecycle",
                   help="one-cycle (warm-up, then annealed to ~0) or constant 1e-3 as the Ray "
                        "Train stages have without a scheduler")
    p.add_argument("--train-poses", type=int, default=None,
                   help="default: the whole training split")
    p.add_argument("--extra-pool", action="append", default=[], metavar="DATASET",
                   help="another rendered dataset (a different --seed) whose poses, every split, "
                        "join the training poses as unlabelled 3D: does a larger pool close the "
                        "gap? Repeatable")
    args = p.parse_args()
    torch.manual_seed(0)
    teacher = load_pretrained(args.teacher).eval()
    if teacher.cfg.geometry:
        # The probe's head reads the embedding alone; a geometry teacher's head reads the
        # pose's geometry beside it and answers the geometry families from it
        # (models/geometry.py), which this probe does not regress.
        sys.exit(f"kd_probe: {args.teacher} reads the pose's geometry beside the embedding; "
                 "the probe distils embedding-only teachers (train one with --no-geometry)")
    train = EvalSet.from_table("train", load_table(args.data, "train", EVAL_COLUMNS),
                               args.train_poses)
    test = EvalSet.from_table("test", load_table(args.data, "test", EVAL_COLUMNS), args.test_poses)
    x, y3, _, target = teacher_targets(teacher, train)
    for uri in args.extra_pool:
        extra = teacher_targets(teacher,
                                EvalSet.from_table("pool", load_table(uri, None, EVAL_COLUMNS)))
        x, y3, target = (torch.cat([x, extra[0]]), torch.cat([y3, extra[1]]),
                         torch.cat([target, extra[3]]))
    print(json.dumps({"training_poses": len(x)}), flush=True)
    xt, _, test_fused, _ = teacher_targets(teacher, test)
    unique = list(dict.fromkeys(test.qa_question))
    with torch.no_grad():
        bank_q = teacher.text([q for _, q in QUESTION_BANK])
        test_q = teacher.text(unique)[torch.tensor([unique.index(q) for q in test.qa_question])]
    bank_mask = family_mask([f for f, _ in QUESTION_BANK])
    test_mask, test_answers = (family_mask(test.qa_family),
                               torch.tensor([ANSWER_INDEX[a] for a in test.qa_answer]))
    depth, rows = torch.tensor(test.qa_needs_depth), torch.tensor(test.qa_row)

    def score(head: nn.Module, z: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            right = (head(z[rows], test_q).masked_fill(~test_mask, float("-inf")).argmax(-1)
                     == test_answers).float()
        return {"vqa": float(right.mean()), "vqa_depth": float(right[depth].mean())}

    reference = score(teacher.answers, test_fused)
    print(json.dumps({"teacher_with_true_3d": reference}), flush=True)

    probe = Probe(copy.deepcopy(teacher.answers).requires_grad_(True), teacher.cfg.embed_dim,
                  args.lift_weight > 0)
    batch, nq = 64, args.questions_per_pose
    opt = torch.optim.AdamW(probe.parameters(), lr=1e-3, weight_decay=0.01)
    steps = args.epochs * (len(x) // batch)
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, 1e-3, total_steps=steps)
             if args.lr_schedule == "onecycle" else torch.optim.lr_scheduler.ConstantLR(opt, 1.0))
    history = []
    for epoch in range(args.epochs):
        t0, order = time.perf_counter(), torch.randperm(len(x))
        probe.train()
        for start in range(0, len(x) - batch + 1, batch):
            idx = order[start:start + batch]
            z, lifted = probe(x[idx])
            pick = torch.randint(0, len(QUESTION_BANK), (batch, nq))
            logits = probe.head(z[:, None].expand(-1, nq, -1).reshape(batch * nq, -1),
                                bank_q[pick.reshape(-1)])
            goal = target[idx][torch.arange(batch)[:, None], pick].reshape(batch * nq, -1)
            loss = answer_kd(logits, goal, bank_mask[pick.reshape(-1)],
                             temperature=args.temperature)
            if lifted is not None:
                loss = loss + args.lift_weight * F.mse_loss(lifted, y3[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        probe.eval()
        with torch.no_grad():
            history.append({"epoch": epoch, **score(probe.head, probe(xt)[0]),
                            "seconds": time.perf_counter() - t0})
        print(json.dumps(history[-1]), flush=True)
    out = Path(__file__).resolve().parent / "results" / "kd_probe.json"
    out.write_text(json.dumps({"args": vars(args), "teacher_with_true_3d": reference,
                               "history": history}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
