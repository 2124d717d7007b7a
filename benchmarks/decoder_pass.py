"""Caption latency at batch 1, one thread, by how the decoder runs a token: transformers'
forward, the lean pass in Python (``gpt2_step._blocks`` as written) and the same pass compiled
with TorchScript (what ``gpt2_step.LeanPass.step`` runs). Interleaved in one process, so machine
noise hits all alike; checks the three write the same captions. Prints a table and writes JSON to
benchmarks/results/decoder_pass.json.

    .venv/bin/python benchmarks/decoder_pass.py --run RUN --data DATASET [--model student]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from common import eval_set, parser, write_results

from p2l3d_core import storage
from p2l3d_core.evaluation.methods import ModelMethod
from p2l3d_core.models import gpt2_step
from p2l3d_core.models.decoder import CAPTION_PROMPT
from p2l3d_core.models.io import load_pretrained

FORMS = {  # how gpt2_step.supports and gpt2_step._compiled are set for each form
    "transformers": (lambda lm: False, gpt2_step._compiled),
    "lean, Python": (gpt2_step.supports, lambda: gpt2_step._blocks),
    "lean, TorchScript": (gpt2_step.supports, gpt2_step._compiled),
}


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--model", default="student", help="model folder of RUN")
    p.add_argument("--poses", type=int, default=20, help="test poses captioned a round")
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(1)
    data = eval_set(args, args.poses)
    method = ModelMethod(args.model, load_pretrained(storage.join(args.run, args.model)))
    decoder = method.model.decoder
    with torch.no_grad():
        z = method.model.embedding_of(method.embed(data))
    supports, compiled = gpt2_step.supports, gpt2_step._compiled
    times: dict[str, list[float]] = {form: [] for form in FORMS}
    texts: dict[str, list[str]] = {}
    try:
        for r in range(args.rounds + 1):  # round 0: warm-up (compiling), untimed
            for form in (list(FORMS) if r % 2 else list(FORMS)[::-1]):
                gpt2_step.supports, gpt2_step._compiled = FORMS[form]
                out = []
                for i in range(len(z)):
                    t0 = time.perf_counter()
                    out += decoder.generate(z[i:i + 1], [CAPTION_PROMPT])
                    if r:
                        times[form].append(1000 * (time.perf_counter() - t0))
                texts[form] = out
    finally:
        gpt2_step.supports, gpt2_step._compiled = supports, compiled
    same = len({tuple(t) for t in texts.values()}) == 1
    tokens = float(np.mean([len(decoder._ids(t)) for t in texts["lean, TorchScript"]]))
    results = {form: {"caption_p50_ms": float(np.median(t)),
                      "caption_p90_ms": float(np.percentile(t, 90))}
               for form, t in times.items()}
    print(f"{args.model}: {len(z)} captions x {args.rounds} rounds, {tokens:.1f} tokens a caption; "
          f"same captions: {same}")
    print(f"{'form':20s} {'p50 ms':>8s} {'p90 ms':>8s}")
    for form, r in results.items():
        print(f"{form:20s} {r['caption_p50_ms']:8.1f} {r['caption_p90_ms']:8.1f}")
    write_results("decoder_pass", {"args": vars(args), "tokens": tokens, "same_captions": same,
                                   "results": results})
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
