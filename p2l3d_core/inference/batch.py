"""Batch captioning of an archive on Ray Data: every person in every photo and sampled video
frame, captioned and questioned, into Parquet (``archive.py`` holds the layout and the
exactly-once record).

Shape: the driver lists the input and leaves out the files a part already holds, groups the rest
(a video alone, photos ``files_per_part`` at a time), and hands the groups to an actor pool
(``ActorPoolStrategy``): each actor loads the predictor once, reads its group's files as bytes,
decodes them with OpenCV, finds the people, runs the student on all of them in one batch, writes
the group's part, and returns per-file statistics the driver turns into progress and a summary.

Why not Ray Data's own job checkpointing: it is reported to hang on clusters of ~4 CPUs or fewer
(its shuffle reserves more CPUs than exist); a part per group, named by its files, gives the same
exactly-once re-run with nothing but file writes.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from p2l3d_core import storage
from p2l3d_core.inference import archive
from p2l3d_core.inference.images import BadInput, decode_image

NO_PERSON = "no person found"


@dataclass
class CaptionJob:
    """What to caption and how. ``on_change``: ``refuse`` an output holding another model's or
    other questions' rows, or write a ``separate`` run beside them (``OUTPUT/runs/<id>``)."""

    model: str
    input: str
    output: str
    questions: list[str] = field(default_factory=list)
    video_stride: int = 5
    overlays: str | None = None
    num_workers: int | None = None
    files_per_part: int = 16
    use_gpu: bool = False
    on_change: str = "refuse"
    pose_models: str | None = None


def _answers(person) -> list[dict]:
    return [{**a.__dict__, "similarity": float(a.similarity)} for a in person.answers]


def _rows(source: str, frame: int, described, fingerprint: str) -> list[dict]:
    """Output rows of one photo or frame: one per person, or one saying why there is none."""
    if described.error:
        return [{"source": source, "frame": frame, "error": described.error,
                 "model": fingerprint}]
    if not described.people:
        return [{"source": source, "frame": frame, "error": NO_PERSON, "model": fingerprint}]
    return [{"source": source, "frame": frame,
             "person": k if p.track is None else p.track, "bbox": p.bbox, "score": p.score,
             "keypoints": p.keypoints, "caption": p.caption, "answers": _answers(p),
             "error": None, "model": fingerprint} for k, p in enumerate(described.people)]


class CaptionWorker:
    """One per actor: the predictor loaded once, then groups of files captioned into parts."""

    def __init__(self, job_json: str, fingerprint: str, input_root: str, threads: int = 1):
        import torch

        from p2l3d_core.inference.people import PeopleFinder
        from p2l3d_core.inference.predictor import Predictor

        torch.set_num_threads(threads)
        self.job = CaptionJob(**json.loads(job_json))
        self.fingerprint = fingerprint
        self.input_root = input_root.rstrip("/")
        self.predictor = Predictor.from_pretrained(
            self.job.model, people_finder=PeopleFinder(self.job.pose_models))
        if self.job.use_gpu and torch.cuda.is_available():
            self.predictor.model.to("cuda")

    def _overlay(self, source: str, frame: int | None, image, people) -> None:
        if self.job.overlays is None or image is None:
            return
        import cv2

        from p2l3d_core.inference.overlay import draw_people

        relative = source[len(self.input_root):].lstrip("/") or posixpath.basename(source)
        stem = posixpath.splitext(relative)[0] + ("" if frame is None else f"_f{frame:06d}")
        ok, data = cv2.imencode(".jpg", draw_people(image, people))
        if ok:
            storage.write_bytes(storage.join(self.job.overlays, f"{stem}.jpg"), data.tobytes())

    def _photos(self, sources: list[str], stats: dict) -> dict[str, list[dict]]:
        """Photos of a group: decoded one by one, described in one batch."""
        images, names, rows = [], [], {}
        for source in sources:
            t0 = time.perf_counter()
            try:
                images.append(decode_image(storage.read_bytes(source), source))
                names.append(source)
            except (BadInput, OSError) as err:
                rows[source] = _rows(source, 0, _error(err), self.fingerprint)
            stats[source]["decode_s"] = time.perf_counter() - t0
        results = self.predictor.describe_batch(images, self.job.questions, names=names)
        timings = self.predictor.last_timings_ms
        for source, image, result in zip(names, images, results):
            rows[source] = _rows(source, 0, result, self.fingerprint)
            stats[source]["pose_s"] = timings.get("people", 0) / 1000 / max(len(names), 1)
            stats[source]["student_s"] = (timings.get("total", 0) - timings.get("people", 0)
                                          ) / 1000 / max(len(names), 1)
            self._overlay(source, None, image, result.people)
        return rows

    def _video(self, source: str, stats: dict) -> list[dict]:
        rows: list[dict] = []
        seen: set[int] = set()
        t0 = time.perf_counter()
        try:
            data = storage.read_bytes(source)
            for frame, image, result in self.predictor.describe_video(
                    data, self.job.questions, self.job.video_stride, name=source):
                rows += _rows(source, frame, result, self.fingerprint)
                stats["frames"] += 1
                timings = self.predictor.last_timings_ms
                if id(timings) not in seen:  # one timing record per batch of frames
                    seen.add(id(timings))
                    stats["pose_s"] += timings.get("people", 0) / 1000
                    stats["student_s"] += (timings.get("total", 0) - timings.get("people", 0)
                                           ) / 1000
                self._overlay(source, frame, image, result.people)
        except (BadInput, OSError) as err:
            rows = _rows(source, 0, _error(err), self.fingerprint)  # a partial video is redone
        stats["decode_s"] = time.perf_counter() - t0 - stats["pose_s"] - stats["student_s"]
        return rows

    def caption(self, sources: list[str]) -> tuple[list[dict], list[dict]]:
        """Rows and per-file statistics of one group of input files."""
        stats = {s: {"source": s, "frames": 0, "decode_s": 0.0, "pose_s": 0.0,
                     "student_s": 0.0} for s in sources}
        rows: dict[str, list[dict]] = {}
        photos = [s for s in sources if archive.kind_of(s) == "photo"]
        if photos:
            rows.update(self._photos(photos, stats))
            for s in photos:
                stats[s]["frames"] = 1
        for s in sources:
            kind = archive.kind_of(s)
            if kind == "video":
                rows[s] = self._video(s, stats[s])
            elif kind is None:
                suffix = posixpath.splitext(s)[1] or "(none)"
                rows[s] = _rows(s, 0, _error(BadInput(
                    f"{s}: not a photo or video (suffix {suffix})")), self.fingerprint)
        ordered = [r for s in sources for r in rows[s]]
        for s in sources:
            st = stats[s]
            st["seconds"] = st["decode_s"] + st["pose_s"] + st["student_s"]
            st["people"] = sum(1 for r in rows[s] if r.get("error") is None)
            st["error"] = next((r["error"] for r in rows[s] if r.get("error")
                                and r["error"] != NO_PERSON), None)
            st["no_person"] = sum(1 for r in rows[s] if r.get("error") == NO_PERSON)
        return ordered, list(stats.values())

    def __call__(self, batch: dict) -> dict:
        import ray

        node = ray.get_runtime_context().get_node_id()  # the summary says where files ran
        out = []
        for group in batch["group"]:
            sources = json.loads(str(group))
            rows, stats = self.caption(sources)
            archive.write_part(self.job.output, sources, rows)
            out.append(json.dumps([{**s, "node": node} for s in stats]))
        return {"stats": np.array(out, dtype=object)}


def _error(err: Exception):
    """An input's outcome when it could not be read: the predictor's ``Described``."""
    from p2l3d_core.inference.predictor import Described

    return Described([], str(err))


def plan_groups(pending: list[str], files_per_part: int) -> list[list[str]]:
    """Videos alone (each is many frames), photos ``files_per_part`` to a group."""
    videos = [[s] for s in pending if archive.kind_of(s) == "video"]
    others = [s for s in pending if archive.kind_of(s) != "video"]
    return videos + [others[i:i + files_per_part] for i in range(0, len(others), files_per_part)]


def resolve_output(job: CaptionJob, settings: dict) -> str:
    """The folder this run writes to: ``job.output``, or a separate run beside another one's
    rows (``on_change='separate'``); a clash with ``refuse`` is a ``ValueError``."""
    clash = archive.settings_clash(job.output, settings)
    if clash is None:
        return job.output
    if job.on_change != "separate":
        raise ValueError(f"{clash}: mixing them would make the output ambiguous. Use another "
                         "--output, or --on-change separate to write this run beside it")
    key = json.dumps([settings["model_fingerprint"], settings["questions"],
                      settings["video_stride"]])
    import hashlib

    separate = storage.join(job.output, "runs", hashlib.sha256(key.encode()).hexdigest()[:12])
    clash = archive.settings_clash(separate, settings)
    if clash is not None:
        raise ValueError(clash)
    return separate


def caption_archive(job: CaptionJob, log=print) -> dict:
    """Caption every file under ``job.input`` into ``job.output`` (resuming a run there) and
    return the summary (also written as ``summary.json``). Ray must be initialised."""
    import ray
    from ray.data import ActorPoolStrategy

    fingerprint = archive.model_fingerprint(job.model)
    settings = archive.run_settings(job.model, fingerprint, job.questions, job.video_stride)
    output = resolve_output(job, settings)
    job = CaptionJob(**{**job.__dict__, "output": output})
    inputs = archive.list_inputs(job.input)
    done = archive.done_sources(output) & set(inputs)
    pending = [s for s in inputs if s not in done]
    groups = plan_groups(pending, job.files_per_part)
    if not storage.exists(storage.join(output, "run.json")):
        storage.write_json(storage.join(output, "run.json"), settings)
    log(f"captioning {len(inputs)} files under {job.input} -> {output} "
        f"({len(done)} already done, {len(pending)} to go, in {len(groups)} parts)")
    started = time.perf_counter()
    run_stats: list[dict] = []
    workers = 0
    if groups:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = max(1, min(job.num_workers or cpus, len(groups)))
        # A pool of exactly num_workers actors when the user asks for that many (spread over
        # the cluster's nodes by Ray Data), else one that grows with the queue up to the CPUs.
        pool = (ActorPoolStrategy(size=workers) if job.num_workers
                else ActorPoolStrategy(min_size=1, max_size=workers))
        ray.data.DataContext.get_current().enable_progress_bars = False
        runtime_env = (storage.worker_runtime_env()
                       if storage.is_s3(output) or storage.is_s3(job.input)
                       or storage.is_s3(job.model) else {})
        resources = {"num_gpus": 1} if job.use_gpu else {"num_cpus": 1}
        ds = ray.data.from_items([{"group": json.dumps(g)} for g in groups],
                                 override_num_blocks=len(groups)).map_batches(
            CaptionWorker, batch_size=1, compute=pool,
            fn_constructor_kwargs={"job_json": json.dumps(job.__dict__),
                                   "fingerprint": fingerprint, "input_root": job.input},
            **({"runtime_env": runtime_env} if runtime_env else {}), **resources)
        total_files = len(pending)
        for row in ds.iter_rows():
            run_stats += json.loads(row["stats"])
            _progress(run_stats, total_files, time.perf_counter() - started, log)
    wall = time.perf_counter() - started
    summary = summarise(output, job, run_stats, wall, workers, len(inputs))
    storage.write_json(storage.join(output, "summary.json"), summary)
    return summary


def _progress(stats: list[dict], total: int, elapsed: float, log) -> None:
    files = len(stats)
    rate = files / max(elapsed, 1e-9)
    log(f"  {files}/{total} files, {sum(s['frames'] for s in stats)} frames, "
        f"{sum(s['people'] for s in stats)} people, "
        f"{sum(1 for s in stats if s['error'])} errors | {rate:.2f} files/s, "
        f"ETA {(total - files) / max(rate, 1e-9):,.0f} s")


def _examples(rows: list[dict], count: int = 3) -> list[dict]:
    """A person from each of the first ``count`` files that have one."""
    out, seen = [], set()
    for r in rows:
        if r["error"] is None and r["source"] not in seen:
            seen.add(r["source"])
            out.append({k: r[k] for k in ("source", "frame", "person", "caption")})
    return out[:count]


def summarise(output: str, job: CaptionJob, run_stats: list[dict], wall: float, workers: int,
              inputs: int) -> dict:
    """Counts over every row the output holds (earlier runs' too), this run's timings and the
    slowest files."""
    table = archive.read_rows(output, ["source", "frame", "person", "caption", "error"])
    rows = table.to_pylist()
    by_file: dict[str, list[dict]] = {}
    for r in rows:
        by_file.setdefault(r["source"], []).append(r)
    outcomes: Counter = Counter()
    for source_rows in by_file.values():
        errors = [r["error"] for r in source_rows if r["error"] and r["error"] != NO_PERSON]
        people = sum(1 for r in source_rows if r["error"] is None)
        outcomes["error" if errors else "people found" if people else NO_PERSON] += 1
    busy = sum(s["seconds"] for s in run_stats)
    return {
        "output": output, "input": job.input, "model": job.model,
        "files": inputs, "files_with_rows": len(by_file), "outcomes": dict(outcomes),
        "frames": len({(r["source"], r["frame"]) for r in rows}),
        "people": sum(1 for r in rows if r["error"] is None),
        "errors": sorted({r["error"] for r in rows if r["error"] and r["error"] != NO_PERSON}),
        "examples": _examples(rows),
        "this_run": {
            "files": len(run_stats), "seconds": round(wall, 2), "workers": workers,
            "files_per_s": round(len(run_stats) / wall, 3) if wall > 0 and run_stats else 0.0,
            "people_per_s": round(sum(s["people"] for s in run_stats) / wall, 3)
            if wall > 0 and run_stats else 0.0,
            "time_s": {k: round(sum(s[k] for s in run_stats), 2)
                       for k in ("decode_s", "pose_s", "student_s")},
            "actor_utilisation": round(busy / (wall * workers), 3) if workers and wall else 0.0,
            "files_per_node": dict(Counter(s["node"] for s in run_stats)),
            "slowest": [{"source": s["source"], "seconds": round(s["seconds"], 2)}
                        for s in sorted(run_stats, key=lambda s: -s["seconds"])[:5]],
        },
    }
