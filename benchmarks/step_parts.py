"""The two costliest parts of a training step, each in its previous form against its current
one, interleaved in one process (one thread) so machine noise hits both alike:

- the answer head on a distilled student's question bank (every pose x every bank question):
  ``net`` on the concatenation ``[p, q, p * q]`` of every pair, against ``AnswerHead.pairs``;
- the decoder's language-model loss on a teacher batch (captions and answers mixed): one
  right-padded pass, against the length-grouped passes of ``PrefixDecoder.forward``.

Both time forward + backward, and first check the two forms give the same values (the decoder
in eval mode, so dropout draws no masks). Prints a table and writes JSON to
benchmarks/results/step_parts.json.

    .venv/bin/python benchmarks/step_parts.py --data RUN/dataset [--batch-size 64 --rounds 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batch_norm_fold import interleaved

from p2l3d_core.dataset.shards import load_table, read_manifest
from p2l3d_core.models.answers import Asked
from p2l3d_core.models.config import preset
from p2l3d_core.models.pose_models import Teacher
from p2l3d_core.training.batches import pick_language_targets
from p2l3d_core.training.runner import with_corpus_vocab


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a rendered dataset (local folder or s3://)")
    p.add_argument("--model", default="small", help="model preset (tiny, small, base)")
    p.add_argument("--batch-size", type=int, default=64, help="rows per step (a worker's batch)")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--per-round", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    image_size = read_manifest(args.data)["config"]["image_size"]
    cfg = with_corpus_vocab(preset(args.model, image_size, "image+keypoints", "image+keypoints"),
                            args.data)
    model = Teacher(cfg)
    rows = load_table(args.data, "train",
                      ["captions", "questions", "answers"]).slice(0, args.batch_size)
    rows = {c: rows.column(c).to_numpy(zero_copy_only=False) for c in rows.column_names}

    # The answer head on the bank, as a distilled student's step asks it.
    bank = Asked.bank(args.batch_size)
    unique = list(dict.fromkeys(bank.questions))
    which = torch.tensor([unique.index(q) for q in bank.questions])
    with torch.no_grad():
        questions = model.text(unique)
    poses = torch.nn.functional.normalize(torch.randn(args.batch_size, cfg.embed_dim), dim=-1)
    poses.requires_grad_(True)
    head = model.answers

    def concatenated() -> torch.Tensor:
        p, q = poses[bank.rows], questions[which]
        return head.net(torch.cat([p, q, p * q], dim=-1))

    def paired() -> torch.Tensor:
        return head.pairs(poses, questions, bank.rows, which)

    with torch.no_grad():
        head_gap = float((concatenated() - paired()).abs().max())

    # The decoder loss on a teacher batch: a caption or one answer per row.
    prompts, targets = pick_language_targets(rows["captions"], rows["questions"], rows["answers"],
                                             np.random.default_rng(0))
    decoder = model.decoder
    embedding = torch.nn.functional.normalize(torch.randn(args.batch_size, cfg.embed_dim), dim=-1)
    embedding.requires_grad_(True)

    def one_pass() -> torch.Tensor:
        logits, labels, _ = decoder._target_logits(embedding, prompts, targets)
        return torch.nn.functional.cross_entropy(logits, labels)

    def grouped() -> torch.Tensor:
        return decoder(embedding, prompts, targets)

    from p2l3d_core.models.decoder import length_groups

    groups = length_groups([len(s) for s in decoder._sequences(embedding, prompts, targets)[0]])
    decoder.eval()
    with torch.no_grad():
        loss_gap = float((one_pass() - grouped()).abs())
    decoder.train()

    def backward(f):
        def call():
            out = f()
            (out.sum() if out.dim() else out).backward()
        return call

    head_ms = interleaved({"concatenated": backward(concatenated), "pairs": backward(paired)},
                          args.rounds, args.per_round)
    decoder_ms = interleaved({"one pass": backward(one_pass), "length groups": backward(grouped)},
                             args.rounds, args.per_round)

    print(f"{'part (forward + backward)':38s} {'before ms':>10s} {'after ms':>10s} "
          f"{'max |diff|':>11s}")
    print(f"{f'answer head, bank of {args.batch_size} x {len(unique)}':38s} "
          f"{head_ms['concatenated']['median_ms']:10.1f} {head_ms['pairs']['median_ms']:10.1f} "
          f"{head_gap:11.2e}")
    print(f"{f'decoder loss, {args.batch_size} rows ({len(groups)} groups)':38s} "
          f"{decoder_ms['one pass']['median_ms']:10.1f} "
          f"{decoder_ms['length groups']['median_ms']:10.1f} "
          f"{loss_gap:11.2e}")
    out = Path(__file__).resolve().parent / "results" / "step_parts.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "args": vars(args),
                               "answer_head": {**head_ms, "max_abs_diff": head_gap},
                               "decoder": {**decoder_ms, "loss_abs_diff": loss_gap,
                                           "group_sizes": [len(g) for g in groups]}}, indent=2))
    print(f"medians of {args.rounds} interleaved rounds; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
