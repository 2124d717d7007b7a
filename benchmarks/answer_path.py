"""Where a single answer's time goes (batch 1, one thread, a model prepared as evaluation runs
it): the 2D keypoint features, drawing the skeleton image, the pose encoder, the question's
text embedding (known question), the answer head, and the whole ``ModelMethod.answer_one``.
The parts are timed in interleaved rounds over the same test questions. Prints a table and
writes JSON to benchmarks/results/answer_path.json.

    .venv/bin/python benchmarks/answer_path.py --run RUN --data DATASET [--models student,teacher]

Before/after a change, run it from both checkouts in turn, twice each: the parts say which
part moved, the whole says by how much.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from common import eval_set, interleaved, parser, write_results

from p2l3d_core import storage
from p2l3d_core.evaluation.methods import EvalSet, ModelMethod
from p2l3d_core.models.inputs import images_to_tensor, pose_inputs
from p2l3d_core.models.io import load_pretrained
from p2l3d_core.render import render_2d


def parts(method: ModelMethod, data: EvalSet, asked: list[int]) -> dict[str, callable]:
    """One call per part, each over every question in ``asked`` (a student's 2D path; a
    teacher's 3D branch is in its encoder and whole-answer times only)."""
    model = method.model
    rows = [data.qa_row[k] for k in asked]
    keypoints = [{"keypoints_2d": data.keypoints_2d[i:i + 1], "visible_2d": data.visible[i:i + 1]}
                 for i in rows]
    z = [method._encode_one(data, i) for i in rows]
    questions = [data.qa_question[k] for k in asked]
    families = [data.qa_family[k] for k in asked]
    return {
        "keypoint features": lambda: [pose_inputs(k, "keypoints") for k in keypoints],
        "skeleton image": lambda: [images_to_tensor(render_2d(data.keypoints_2d[i],
                                                              method.render)[None])
                                   for i in rows],
        "pose embedding": lambda: [method._encode_one(data, i) for i in rows],
        "question embedding": lambda: [model.text([q]) for q in questions],
        "answer from embeddings": lambda: [model.answer(zi, [q], [f])
                                           for zi, q, f in zip(z, questions, families)],
        "whole answer": lambda: [method.answer_one(data, k) for k in asked],
    }


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--models", default="student", help="model folders of RUN to time")
    p.add_argument("--questions", type=int, default=200, help="test questions answered a round")
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(1)
    data = eval_set(args, args.questions)
    asked = data.spread_questions(args.questions)
    results = {}
    for name in args.models.split(","):
        method = ModelMethod(name, load_pretrained(storage.join(args.run, name)), batch_size=1)
        with torch.no_grad():
            calls = parts(method, data, asked)
            for call in calls.values():
                call()  # warm-up: compiled graphs' first runs, caches
            timed = interleaved(calls, args.rounds, 1)
        results[name] = {part: {k: v / len(asked) for k, v in r.items()}
                         for part, r in timed.items()}
        print(f"{name}: {len(asked)} questions x {args.rounds} rounds, "
              f"ms per answer (median / fastest)")
        for part, r in results[name].items():
            print(f"  {part:24s} {r['median_ms']:7.3f} / {r['fastest_ms']:6.3f}")
    write_results("answer_path", {"args": vars(args), "torch": torch.__version__,
                                  "numpy": np.__version__, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
