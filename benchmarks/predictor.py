"""The predictor end to end on real photos: latency, batch throughput, question matching, and a
first look at how a student answers from a real estimator's 2D. Prints tables, writes JSON.

    .venv/bin/python benchmarks/predictor.py --model runs/quickstart/student [--rounds 30]

- Latency, one thread, p50 and p99 over the COCO sample photos: decode + people (MoveNet) per
  photo; the student's caption and one answer from one person's keypoints; whole photo to
  caption for one person (decode, people, render, student, decoder). Target (issue 22): whole
  photo to caption <= 60 ms p50.
- Throughput of the batch form from keypoints at batch 1, 16 and 64 (people/s, one thread).
- Question matching: typed paraphrases of bank questions (labelled with their family) and
  questions no family answers, their similarity to the best bank question, and how many land
  right at the predictor's threshold.
- Real frames with 3D truth (4 Human3.6M, 4 MPI-INF-3DHP in ../shared/data): every bank question
  whose answer the true 3D defines, asked of the person the estimator finds, against the rules'
  answer on the true 3D. A measurement, not a target: the student learned from synthetic poses.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_results

from p2l3d_core.inference.asking import MATCH_THRESHOLD
from p2l3d_core.inference.images import decode_image
from p2l3d_core.inference.predictor import Predictor

SHARED = ROOT.parent / "shared" / "data" / "poses" / "mmpose"

# Typed questions: (family it should match, text). None: nothing in the bank answers it.
TYPED = [
    ("joint_bend", "Is the left knee bent?"), ("joint_bend", "is his right elbow straight"),
    ("joint_bend", "How much is the right knee bent?"), ("joint_bend", "Is the left leg bent?"),
    ("torso_lean", "Is the person leaning?"), ("torso_lean", "Is she bending forward?"),
    ("torso_lean", "Does the person lean back?"),
    ("facing", "Which way is she facing?"), ("facing", "Is the person facing the camera?"),
    ("hand_height", "Is the left hand raised?"), ("hand_height", "How high is the right arm?"),
    ("hand_height", "Is the right hand above the head?"),
    ("feet_distance", "Are the feet apart?"), ("feet_distance", "Are the legs spread?"),
    ("hands_distance", "Are the hands close together?"),
    ("ground_contact", "Are both feet on the ground?"), ("ground_contact", "Is a foot lifted?"),
    ("foot_forward", "Which leg is in front?"), ("hand_forward", "Which hand is further ahead?"),
    ("hand_front_back", "Is the left hand in front of the body?"),
    ("hand_side", "Is the right hand across the body?"),
    ("knee_height", "Is the left knee raised above the hip?"),
    ("action", "What is this person doing?"), ("action", "What activity is shown?"),
    (None, "What colour is the shirt?"), (None, "Is he holding a cup?"),
    (None, "How old is the person?"), (None, "Is it raining?"),
    (None, "What is the weather like?"), (None, "Is the person happy?"),
    (None, "How many people are there?"), (None, "What is in the background?"),
]


def percentiles(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(1000 * float(np.percentile(times, 50)), 2),
            "p99_ms": round(1000 * float(np.percentile(times, 99)), 2)}


def latency(predictor: Predictor, rounds: int) -> dict:
    photos = [p.read_bytes() for p in sorted((SHARED / "coco").glob("*.jpg"))]
    question = ["Is the left knee bent?"]
    one = json.loads((SHARED / "coco" / "test_coco.json").read_text())["annotations"][0]
    kp = np.asarray(one["keypoints"], dtype=np.float64).reshape(17, 3)
    kp[:, 2] = kp[:, 2] > 0
    predictor.describe(photos[0], question)  # warm-up: the matcher embeds the bank once
    people, whole, student = [], [], []
    for _ in range(rounds):
        for data in photos:
            t0 = time.perf_counter()
            predictor.people_finder(decode_image(data))
            people.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        predictor.describe(kp, question)
        student.append(time.perf_counter() - t0)
    big = max(photos, key=lambda d: len(predictor.people_finder(decode_image(d))))
    small = min(photos, key=lambda d: len(predictor.people_finder(decode_image(d))))
    for _ in range(rounds):
        t0 = time.perf_counter()
        predictor.describe(small)
        whole.append(time.perf_counter() - t0)
    many = [predictor.describe(big) for _ in range(3)]
    return {"decode + people, per photo": percentiles(people),
            "student: caption + 1 answer from keypoints": percentiles(student),
            f"whole photo -> caption ({len(many[0]) and len(predictor.describe(small))} person)":
                percentiles(whole)}


def throughput(predictor: Predictor, rounds: int) -> dict:
    ann = [a for a in json.loads((SHARED / "coco" / "test_coco.json").read_text())["annotations"]
           if a["num_keypoints"] >= 6]
    poses = []
    for a in ann:
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(17, 3)
        kp[:, 2] = kp[:, 2] > 0
        poses.append(kp)
    out = {}
    for batch in (1, 16, 64):
        values = [poses[i % len(poses)] for i in range(batch)]
        predictor.describe_batch(values, ["Is the left knee bent?"])
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < max(2.0, rounds / 15):
            predictor.describe_batch(values, ["Is the left knee bent?"])
            count += batch
        out[f"batch {batch}"] = round(count / (time.perf_counter() - start), 1)
    return out


def matching(predictor: Predictor) -> dict:
    matches = predictor.matcher.match([q for _, q in TYPED])
    rows, right = [], 0
    for (family, text), m in zip(TYPED, matches):
        best_family = predictor.matcher.bank_families[
            predictor.matcher.bank_questions.index(m.matched_question)] if m.matched_question \
            else None
        ok = m.family == family
        right += ok
        rows.append({"question": text, "expected": family, "matched": best_family,
                     "similarity": m.similarity, "right": ok})
    on_topic = [r["similarity"] for r in rows if r["expected"]]
    off_topic = [r["similarity"] for r in rows if not r["expected"]]
    return {"threshold": MATCH_THRESHOLD, "right": right, "asked": len(rows),
            "paraphrase_similarity_min_median": [min(on_topic), float(np.median(on_topic))],
            "other_similarity_max_median": [max(off_topic), float(np.median(off_topic))],
            "rows": rows}


def real_frames(predictor: Predictor) -> dict:
    """Each family's answers on the frames with 3D truth against the rules on the true 3D."""
    from p2l3d_core.language.posecodes import measure_posecodes
    from p2l3d_core.language.questions import answer_table
    from p2l3d_core.poses.h36m import read_3dhp_body3d, read_h36m_body3d

    records = [(SHARED / "h36m" / r.meta["imgname"], r)
               for r in read_h36m_body3d(SHARED / "h36m" / "test_h36m_body3d.npz")]
    for name in ("test_3dhp_train.npz", "test_3dhp_test.npz"):
        records += [(SHARED / "mpi_inf_3dhp" / r.meta["imgname"], r)
                    for r in read_3dhp_body3d(SHARED / "mpi_inf_3dhp" / name)]
    per_family: dict[str, list[bool]] = defaultdict(list)
    found = 0
    for image_path, record in records:
        codes = measure_posecodes(record.joints_3d[None], record.camera.position[None])
        table = answer_table(codes, 0, "")  # no action label: the action family is not scored
        people = predictor.describe(image_path.read_bytes(), list(table))
        if not people:
            continue
        found += 1
        truth_2d = np.asarray(record.joints_2d)
        centre = np.nanmean(truth_2d, axis=0)
        person = min(people, key=lambda p: np.linalg.norm(
            np.mean([b for b in (p.bbox[:2], p.bbox[2:])], axis=0) - centre))
        bank_family = dict(zip(predictor.matcher.bank_questions, predictor.matcher.bank_families))
        for answer in person.answers:
            per_family[bank_family[answer.question]].append(answer.answer == table[answer.question])
    return {"frames": len(records), "person_found": found,
            "per_family": {f: {"right": int(sum(v)), "asked": len(v),
                               "accuracy": round(float(np.mean(v)), 3)}
                           for f, v in sorted(per_family.items())},
            "all": round(float(np.mean([x for v in per_family.values() for x in v])), 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="runs/quickstart/student", help="a student's folder")
    p.add_argument("--rounds", type=int, default=30)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    predictor = Predictor.from_pretrained(args.model)
    results = {"model": args.model, "latency": latency(predictor, args.rounds),
               "throughput_people_per_s": throughput(predictor, args.rounds),
               "matching": matching(predictor), "real_frames": real_frames(predictor)}
    print(f"\nLatency, one thread ({args.model})")
    print(f"| {'step':<48} | p50 ms | p99 ms |\n|{'-' * 50}|--------|--------|")
    for step, v in results["latency"].items():
        print(f"| {step:<48} | {v['p50_ms']:6.1f} | {v['p99_ms']:6.1f} |")
    print("\nBatch form from keypoints, one thread: "
          + ", ".join(f"{k}: {v} people/s" for k, v in results["throughput_people_per_s"].items()))
    m = results["matching"]
    print(f"\nQuestion matching at threshold {m['threshold']}: {m['right']} of {m['asked']} typed "
          f"questions land right; paraphrases score min/median "
          f"{m['paraphrase_similarity_min_median']}, other questions max/median "
          f"{m['other_similarity_max_median']}")
    for row in m["rows"]:
        if not row["right"]:
            print(f"   wrong: {row['question']!r} expected {row['expected']}, got "
                  f"{row['matched']} ({row['similarity']})")
    r = results["real_frames"]
    print(f"\nReal frames with 3D truth: person found in {r['person_found']} of {r['frames']}; "
          f"answers right vs the rules on true 3D: {r['all']}")
    print(f"| {'family':<16} | right | asked | accuracy |\n|{'-' * 18}|-------|-------|----------|")
    for family, v in r["per_family"].items():
        print(f"| {family:<16} | {v['right']:5d} | {v['asked']:5d} | {v['accuracy']:8.3f} |")
    print(f"\nwrote {write_results('predictor', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
