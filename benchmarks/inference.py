"""Inference speed of trained models: single-pose latency (batch 1, one thread: the online
service case) and batched throughput (the archive-captioning case). Prints a table and writes
JSON to benchmarks/results/inference.json.

    .venv/bin/python benchmarks/inference.py --run runs/quickstart [--poses 200] [--batch 64]

Target (paper): 30 ms per sample. Caption latency is from 2D keypoints to a caption: rendering
the skeleton image, encoding, greedy decoding. Answer latency is from 2D keypoints and the
question text to an answer (``ModelMethod.answer_one``): rendering, encoding the pose and the
question, the answer head; no decoder. It is timed for known questions (text embedding cached,
as in a running service) and for new ones (one text-encoder pass more).
"""

from __future__ import annotations

import platform
import sys
import time

import torch
from common import eval_set, parser, write_results

from p2l3d_core import storage
from p2l3d_core.evaluation.methods import EvalSet, ModelMethod
from p2l3d_core.evaluation.metrics import latency_ms
from p2l3d_core.models.decoder import CAPTION_PROMPT
from p2l3d_core.models.io import load_pretrained
from p2l3d_core.training.plan import find_models


def measure(name: str, path: str, data: EvalSet, batch: int) -> dict:
    method = ModelMethod(name, load_pretrained(path), batch_size=batch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    caption = latency_ms(lambda i: method.predict_one(data, i), min(50, len(data)))

    # Answers twice over the same questions: first each question is new (its text goes through
    # the text encoder), then known (its features cached, as in a running service).
    asked = list({data.qa_question[k]: k for k in data.spread_questions(400)}.values())[:50]
    new = latency_ms(lambda k: method.answer_one(data, asked[k]), len(asked), warmup=0,
                     name="answer")
    vqa = latency_ms(lambda k: method.answer_one(data, asked[k]), len(asked), name="answer")
    torch.set_num_threads(threads)
    t0 = time.perf_counter()  # archive captioning: encode and caption in batches
    z = method.model.embedding_of(method.embed(data))
    with torch.no_grad():
        for start in range(0, len(data), batch):
            zb = z[start:start + batch]
            method.model.decoder.generate(zb, [CAPTION_PROMPT] * len(zb))
    batched = len(data) / (time.perf_counter() - t0)
    return {"method": name, "caption_p50_ms": caption["latency_p50_ms"],
            "caption_p90_ms": caption["latency_p90_ms"], "answer_p50_ms": vqa["answer_p50_ms"],
            "answer_new_question_p50_ms": new["answer_p50_ms"],
            "batched_captions_per_s": batched}


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--poses", type=int, default=200, help="test poses for the batched pass")
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    run = args.run = storage.absolute(args.run)
    data = eval_set(args, args.poses)
    models = find_models(run)
    rows = [measure(name, paths[0], data, args.batch) for name, paths in models.items()]
    print(f"{'method':<18}{'caption p50 ms':>16}{'caption p90 ms':>16}{'answer p50 ms':>15}"
          f"{'  (new question)':>16}{'batched captions/s':>20}")
    for r in rows:
        print(f"{r['method']:<18}{r['caption_p50_ms']:>16.1f}{r['caption_p90_ms']:>16.1f}"
              f"{r['answer_p50_ms']:>15.1f}{r['answer_new_question_p50_ms']:>16.1f}"
              f"{r['batched_captions_per_s']:>20.1f}")
    write_results("inference", {"machine": platform.platform(),
                                "threads_batched": torch.get_num_threads(),
                                "run": run, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
