"""What preparing a model for inference buys at batch 1, one thread: folding batch norm into
the convolutions (``inference/prepare.fold_batch_norm``), then also freezing the image encoders
into TorchScript graphs (``for_inference``, what evaluation runs). Times a pose's embedding from
its keypoints (``ModelMethod._encode_one``, rendering included) and a whole answer
(``ModelMethod.answer_one``) of each model as trained, folded and prepared, interleaved in one
process so machine noise hits all alike. Checks the answers are identical. Prints a table and
writes JSON to benchmarks/results/batch_norm_fold.json.

    .venv/bin/python benchmarks/batch_norm_fold.py --run RUN --data DATASET \\
        [--models student,teacher]
"""

from __future__ import annotations

import sys

import torch
from common import eval_set, interleaved, parser, write_results

from p2l3d_core import storage
from p2l3d_core.evaluation.methods import ModelMethod
from p2l3d_core.inference.prepare import fold_batch_norm
from p2l3d_core.models.io import load_pretrained


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--models", default="student,teacher", help="model folders of RUN to time")
    p.add_argument("--questions", type=int, default=200, help="test questions answered a round")
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)
    data = eval_set(args, args.questions)
    ks = data.spread_questions(args.questions)
    results = {}
    print(f"{'model':10s} {'what':12s} {'as trained ms (median / fastest)':>34s} {'folded ms':>20s}"
          f" {'prepared ms':>20s}")
    for name in args.models.split(","):
        path = storage.join(args.run, name)
        prepared = ModelMethod(name, load_pretrained(path), batch_size=1)  # for_inference
        plain = ModelMethod(name, load_pretrained(path), batch_size=1)
        plain.model = load_pretrained(path).eval().requires_grad_(False)  # as trained
        folded = ModelMethod(name, load_pretrained(path), batch_size=1)
        folded.model = load_pretrained(path).requires_grad_(False)
        count = fold_batch_norm(folded.model)
        methods = {"trained": plain, "folded": folded, "prepared": prepared}
        same = all(len({m.answer_one(data, k) for m in methods.values()}) == 1 for k in ks)
        with torch.no_grad():
            encode = interleaved({k: (lambda m=m: m._encode_one(data, 0))
                                  for k, m in methods.items()},
                                 args.rounds, 50)
            answer = interleaved({k: (lambda m=m: [m.answer_one(data, q) for q in ks])
                                  for k, m in methods.items()}, args.rounds, 1)
        answer = {k: {m: v / len(ks) for m, v in d.items()} for k, d in answer.items()}
        results[name] = {"folded_layers": count, "identical_answers": same, "encode_one": encode,
                         "answer_one": answer}
        for what, r in (("encode_one", encode), ("answer_one", answer)):
            print(f"{name:10s} {what:12s} {r['trained']['median_ms']:16.2f}"
                  f" / {r['trained']['fastest_ms']:5.2f}"
                  f" {r['folded']['median_ms']:13.2f} / {r['folded']['fastest_ms']:5.2f}"
                  f" {r['prepared']['median_ms']:13.2f} / {r['prepared']['fastest_ms']:5.2f}")
        print(f"{name:10s} {count} batch norms folded; "
              f"identical answers on {len(ks)} questions: {same}")
    write_results("batch_norm_fold", {"args": vars(args), "results": results})
    return 0 if all(r["identical_answers"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
