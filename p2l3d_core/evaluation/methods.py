"""The methods compared on an evaluation set, behind one interface.

* :class:`ModelMethod` - a trained teacher or student (``student``, ``teacher``,
  ``baseline_2d``, ``baseline_2d_no3d``, ``coords_2d`` are all this): pose embedding -> decoder.
  Captions are generated greedily; a question is answered by ranking its family's closed answer
  vocabulary by the decoder's likelihood.
* :class:`RuleMethod` - the rule-based describer on 3D joints: true 3D (``rules_3d``, the
  ceiling) or joints lifted from 2D by a network (``lifter``).

Latency is one pose at a time from its keypoints, as a service would see it: rendering
included for image models, lifting included for the lifter. ``predict_one`` writes a caption,
``answer_one`` answers one question (its text encoded there too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch

from p2l3d_core.dataset.schema import Column
from p2l3d_core.evaluation.lifter import Lifter, viewer_cameras, viewer_frame
from p2l3d_core.inference.predictor import Predictor
from p2l3d_core.language import describe_batch
from p2l3d_core.language.posecodes import measure_posecodes
from p2l3d_core.language.questions import answer_table
from p2l3d_core.models.inputs import decode_images, images_to_tensor, pose_inputs_3d
from p2l3d_core.models.retrieval import recall_at_k
from p2l3d_core.poses.camera import Camera
from p2l3d_core.render import render_3d


@dataclass
class EvalSet:
    """Poses with their true text, in arrays; ``qa_*`` lists hold one entry per question."""

    name: str
    actions: list[str]
    image_2d: list[bytes]
    image_3d: list[bytes]
    keypoints_2d: np.ndarray  # (N, 17, 2)
    visible: np.ndarray  # (N, 17)
    joints_3d: np.ndarray  # (N, 17, 3) world
    cameras: list[Camera]
    captions: list[list[str]]
    qa_row: list[int] = field(default_factory=list)
    qa_question: list[str] = field(default_factory=list)
    qa_answer: list[str] = field(default_factory=list)
    qa_family: list[str] = field(default_factory=list)
    qa_needs_depth: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.actions)

    def batch(self, rows: np.ndarray) -> dict:
        """Rows as a batch in the rendered dataset's column names (what training reads)."""
        return {Column.IMAGE_2D: [self.image_2d[i] for i in rows],
                Column.IMAGE_3D: [self.image_3d[i] for i in rows],
                Column.KEYPOINTS_2D: self.keypoints_2d[rows], Column.VISIBLE_2D: self.visible[rows],
                Column.KEYPOINTS_3D: self.joints_3d[rows],
                Column.CAMERA: [self.cameras[i].to_row() for i in rows]}

    def spread_questions(self, count: int) -> list[int]:
        """``count`` question indices spread evenly over the set (every family among them):
        the questions a latency measurement asks."""
        count = min(count, len(self.qa_row))
        return ([int(k) for k in np.linspace(0, len(self.qa_row) - 1, count).round()]
                if count else [])

    @property
    def camera_positions(self) -> np.ndarray:
        return np.stack([c.position for c in self.cameras])

    @classmethod
    def from_table(cls, name: str, table: pa.Table, limit: int | None = None,
                   seed: int = 0) -> EvalSet:
        """Rows of a rendered dataset (one split); ``limit`` draws that many at random."""
        if limit is not None and limit < table.num_rows:
            rows = np.sort(np.random.default_rng(seed).choice(table.num_rows, limit, replace=False))
            table = table.take(rows)
        col = {k: table.column(k).to_pylist() for k in (
            Column.ACTION, Column.IMAGE_2D, Column.IMAGE_3D, Column.KEYPOINTS_2D,
            Column.VISIBLE_2D, Column.KEYPOINTS_3D, Column.CAMERA, Column.CAPTIONS,
            Column.QUESTIONS, Column.ANSWERS, Column.QUESTION_FAMILIES, Column.NEEDS_DEPTH)}
        out = cls(name=name, actions=col[Column.ACTION], image_2d=col[Column.IMAGE_2D],
                  image_3d=col[Column.IMAGE_3D],
                  keypoints_2d=np.array(col[Column.KEYPOINTS_2D], dtype=np.float64),
                  visible=np.array(col[Column.VISIBLE_2D], dtype=bool),
                  joints_3d=np.array(col[Column.KEYPOINTS_3D], dtype=np.float64),
                  cameras=[Camera.from_dict(c) for c in col[Column.CAMERA]],
                  captions=col[Column.CAPTIONS])
        for i, (qs, ans, fam, depth) in enumerate(zip(col[Column.QUESTIONS], col[Column.ANSWERS],
                                                      col[Column.QUESTION_FAMILIES],
                                                      col[Column.NEEDS_DEPTH])):
            for q, a, f, d in zip(qs, ans, fam, depth):
                out.qa_row.append(i)
                out.qa_question.append(q)
                out.qa_answer.append(a)
                out.qa_family.append(f)
                out.qa_needs_depth.append(bool(d))
        return out


@dataclass
class Predictions:
    captions: list[str]
    answers: list[str]  # one per question of the EvalSet
    pose_embeddings: torch.Tensor | None = None
    text_embeddings: torch.Tensor | None = None  # of each pose's first true caption

    def retrieval(self) -> dict[str, float]:
        if self.pose_embeddings is None or self.text_embeddings is None:
            return {}
        return recall_at_k(self.pose_embeddings, self.text_embeddings)


class ModelMethod:
    """A trained teacher or student, asked through the predictor (``inference/predictor.py``),
    the path batch captioning and Serve use: captions from its decoder, answers from its
    answer head within each question's family. The batch path reads the set's skeleton images as
    rendered; the one-pose path draws them from the keypoints, as a service would."""

    def __init__(self, name: str, model, batch_size: int = 64, score_batch: int = 512):
        self.name = name
        self.predictor = Predictor(model, batch_size=batch_size)  # prepared: not trained on
        self.model = self.predictor.model
        self.uses_3d = self.predictor.reads_3d
        self.pose_input_3d = model.cfg.pose_input_3d
        self.render = self.predictor.render
        self.score_batch = score_batch

    def _inputs_3d(self, data: EvalSet, rows: np.ndarray) -> dict | None:
        return pose_inputs_3d(data.batch(rows), self.pose_input_3d) if self.uses_3d else None

    @torch.no_grad()
    def embed(self, data: EvalSet) -> torch.Tensor:
        rows = np.arange(len(data))
        images = (decode_images(data.image_2d) if "image" in self.predictor.pose_input
                  and len(data) else None)
        return self.predictor.embed(data.keypoints_2d, images, self._inputs_3d(data, rows))

    @torch.no_grad()
    def predict(self, data: EvalSet) -> Predictions:
        z = self.embed(data)
        captions = self.predictor.captions(z)
        answers = self.predictor.answer_known(z, data.qa_row, data.qa_question, data.qa_family,
                                              self.score_batch)
        text = self.model.text([c[0] if c else "" for c in data.captions])
        return Predictions(captions, answers, self.model.embedding_of(z), text)

    def _encode_one(self, data: EvalSet, i: int) -> torch.Tensor:
        """Embedding of pose ``i`` from its keypoints, everything on the way included: the
        images are drawn here, not read from the dataset."""
        inputs_3d = None
        if self.uses_3d:
            inputs_3d = (pose_inputs_3d(data.batch(np.array([i])), "keypoints")
                         if "keypoints" in self.pose_input_3d else {})
            if "image" in self.pose_input_3d:
                joints = data.cameras[i].to_camera(data.joints_3d[i])
                inputs_3d["image"] = images_to_tensor(render_3d(joints, self.render)[None])
        return self.predictor.embed(data.keypoints_2d[i:i + 1], None, inputs_3d)

    @torch.no_grad()
    def predict_one(self, data: EvalSet, i: int) -> str:
        """Caption of pose ``i`` from its keypoints (rendering and greedy decoding included)."""
        return self.predictor.captions(self._encode_one(data, i))[0]

    @torch.no_grad()
    def answer_one(self, data: EvalSet, k: int) -> str:
        """Answer to question ``k`` of ``data`` from its pose's keypoints and the question text:
        rendering, the pose and question encoders and the answer head. A question already
        seen has its embedding cached (``TextEncoder.embedding_cache`` of a prepared model), as
        a long-running service has it; an unseen question adds one text-encoder pass."""
        z = self._encode_one(data, data.qa_row[k])
        return self.predictor.answer_known(z, [0], [data.qa_question[k]], [data.qa_family[k]])[0]


class RuleMethod:
    """The rule-based describer on 3D joints: the true ones with the true action label (the
    ceiling), or joints lifted by ``lifter`` with no label (a pipeline from 2D has no action
    recogniser: it neither names the action nor answers the action question)."""

    def __init__(self, name: str, lifter: Lifter | None = None):
        self.name = name
        self.lifter = lifter

    def _actions(self, data: EvalSet, rows: slice) -> list[str]:
        actions = data.actions[rows]
        return actions if self.lifter is None else [""] * len(actions)

    def _joints(self, data: EvalSet, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        if self.lifter is None:
            return data.joints_3d[rows], data.camera_positions[rows]
        lifted = self.lifter.lift(data.keypoints_2d[rows], data.visible[rows])
        return lifted, viewer_cameras(len(lifted))

    def predict(self, data: EvalSet) -> Predictions:
        joints, cams = self._joints(data, slice(None))
        actions = self._actions(data, slice(None))
        texts = describe_batch(joints, actions, cams, seeds=None, num_captions=1)
        # Lifted joints are an estimate: its answer is the nearest category, not "undecided".
        codes = measure_posecodes(joints, cams, decisive=self.lifter is not None)
        tables = [answer_table(codes, i, a) for i, a in enumerate(actions)]
        answers = [tables[r].get(q, "") for r, q in zip(data.qa_row, data.qa_question)]
        return Predictions([t.captions[0] if t.captions else "" for t in texts], answers)

    def predict_one(self, data: EvalSet, i: int) -> str:
        joints, cams = self._joints(data, slice(i, i + 1))
        return describe_batch(joints, self._actions(data, slice(i, i + 1)), cams,
                              num_captions=1)[0].captions[0]

    def answer_one(self, data: EvalSet, k: int) -> str:
        """Answer to question ``k``: lift (if lifting), measure the posecodes, look it up."""
        i = data.qa_row[k]
        joints, cams = self._joints(data, slice(i, i + 1))
        action = self._actions(data, slice(i, i + 1))[0]
        codes = measure_posecodes(joints, cams, decisive=self.lifter is not None)
        return answer_table(codes, 0, action).get(data.qa_question[k], "")


def lifter_error_cm(lifter: Lifter, data: EvalSet) -> float:
    """Mean per-joint error of the lifted joints in the viewer frame (cm)."""
    truth = viewer_frame(data.joints_3d, data.camera_positions)
    err = np.linalg.norm(lifter.lift(data.keypoints_2d, data.visible) - truth, axis=-1)
    return float(100 * np.nanmean(err))
