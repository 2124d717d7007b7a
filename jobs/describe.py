"""Describe the people in a few photos, videos or keypoint files with a trained student: each
person's caption and answers to your questions. The nanoGPT ``sample.py`` of this project.

Examples:
  python jobs/describe.py --model runs/quickstart/student photo.jpg
  python jobs/describe.py --model runs/quickstart/student clip.mp4 --video-stride 10 \\
      --question "Is the left knee bent?" --question "Which way is the person facing?"
  python jobs/describe.py --model s3://bucket/run/student people.json --json
  python jobs/describe.py --model runs/quickstart/student photo.jpg --overlay overlays/

FILE is a photo (jpg, jpeg, png, webp, bmp), a video (mp4, avi, mov, mkv; every K-th frame,
people tracked across frames) or a COCO-style keypoints JSON (one person an annotation). A
question is free text: it is matched to the model's question bank, or answered by the decoder
when nothing matches (marked "free form"). ``--questions`` lists what the model answers.
A file that cannot be read is reported and the others go on; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import LOG, at_least_one, location, setup_logging

from p2l3d_core.inference.images import IMAGE_SUFFIXES, BadInput
from p2l3d_core.inference.video import VIDEO_SUFFIXES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=location,
                   help="a student's model folder (local or s3://), e.g. runs/quickstart/student")
    p.add_argument("files", nargs="*", type=Path, metavar="FILE",
                   help="photos, videos or COCO keypoint JSON files")
    p.add_argument("--question", action="append", default=[], metavar="Q",
                   help="a question to ask about every person (repeatable)")
    p.add_argument("--video-stride", type=at_least_one, default=5, metavar="K",
                   help="describe every K-th frame of a video (default 5)")
    p.add_argument("--overlay", type=Path, default=None, metavar="DIR",
                   help="also write each photo and sampled frame with the people drawn")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object a person (source, frame, person, ...)")
    p.add_argument("--questions", action="store_true",
                   help="list the question families the model answers, with examples, and exit")
    p.add_argument("--pose-models", default=None, metavar="PATH",
                   help="folder (or s3://) of the pose estimator's files "
                        "(default: the set-up's cache)")
    args = p.parse_args(argv)
    if not args.files and not args.questions:
        p.error("give at least one FILE (or --questions)")
    return args


def _print(source: str, frame: int, people: list, as_json: bool) -> None:
    if as_json:
        for k, person in enumerate(people):
            row = person.to_dict()
            row = {"source": source, "frame": frame,
                   "person": row.pop("track") if "track" in row else k, **row}
            print(json.dumps(row))
        return
    where = source if frame == 0 and not source.endswith(VIDEO_SUFFIXES) else (
        f"{source} frame {frame}")
    print(f"{where}: {len(people)} {'person' if len(people) == 1 else 'people'}")
    for k, person in enumerate(people):
        label = f"#{person.track}" if person.track is not None else f"{k + 1}"
        print(f"  {label} (score {person.score:.2f}): {person.caption}")
        for a in person.answers:
            how = ("free form" if a.free_form else
                   f"as {a.matched_question!r}, similarity {a.similarity:.2f}")
            print(f"      Q: {a.question}  A: {a.sentence}  ({how})")


def _overlay(folder: Path | None, image, people: list, stem: str) -> None:
    if folder is None:
        return
    import cv2

    from p2l3d_core.inference.overlay import draw_people

    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / f"{stem}.jpg"), draw_people(image, people))


def describe_file(predictor, path: Path, args: argparse.Namespace) -> int:
    """Describe one file and print it; returns how many of its inputs failed (a person of a
    keypoints file); :class:`BadInput` if the file cannot be read."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    if suffix in VIDEO_SUFFIXES:
        for frame, image, result in predictor.describe_video(str(path), args.question,
                                                             args.video_stride):
            _print(str(path), frame, result.people, args.json)
            _overlay(args.overlay, image, result.people, f"{path.stem}_{frame:06d}")
        return 0
    data = path.read_bytes()
    if suffix == ".json":
        from p2l3d_core.inference.keypoint_formats import read_keypoint_file

        people = read_keypoint_file(data, str(path))
        results = predictor.describe_batch([kp for _, kp in people], args.question,
                                           names=[label for label, _ in people])
        failed = 0
        for (label, _), result in zip(people, results):
            if result.error:
                failed += 1
                LOG.error("%s", result.error)
                if args.json:
                    print(json.dumps({"source": label, "error": result.error}))
                continue
            _print(label, 0, result.people, args.json)
        return failed
    if suffix not in IMAGE_SUFFIXES:
        raise BadInput(f"{path}: unknown file type {suffix!r} (photos: "
                       f"{', '.join(IMAGE_SUFFIXES)}; videos: {', '.join(VIDEO_SUFFIXES)}; "
                       "keypoints: .json)")
    from p2l3d_core.inference.images import decode_image

    image = decode_image(data, str(path))
    people = predictor.describe(image, args.question)
    _print(str(path), 0, people, args.json)
    _overlay(args.overlay, image, people, path.stem)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(sys.stderr)  # stdout carries the descriptions (JSON lines with --json)
    from p2l3d_core.inference.people import PeopleFinder
    from p2l3d_core.inference.predictor import Predictor

    try:
        finder = PeopleFinder(args.pose_models) if any(
            f.suffix.lower() != ".json" for f in args.files) else None
        predictor = Predictor.from_pretrained(args.model, people_finder=finder)
        if args.questions:
            for family, examples in predictor.questions().items():
                print(f"{family}: " + " | ".join(examples))
            if not args.files:
                return 0
        predictor.match(args.question)  # a bad question stops here, before any file
    except (FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    failed = 0
    for path in args.files:
        try:
            failed += describe_file(predictor, path, args)
        except BadInput as err:
            failed += 1
            LOG.error("%s", err)
            if args.json:
                print(json.dumps({"source": str(path), "error": str(err)}))
    if args.overlay is not None:
        LOG.info("overlays written to %s", args.overlay)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
