import json
import os

import numpy as np
import pytest

from p2l3d_core.evaluation.compare import check_targets
from p2l3d_core.evaluation.report import markdown, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _report():
    student = {"vqa_accuracy": 0.6, "vqa_accuracy_std": 0.05, "vqa_depth_accuracy": 0.55,
               "vqa_nondepth_accuracy": 0.62, "BLEU-1": 0.7, "BLEU-4": 0.3, "ROUGE-L": 0.5,
               "CIDEr": 1.1, "METEOR": 0.4, "latency_p50_ms": 2.345, "caption_precision": 0.812,
               "vqa_geometry_accuracy": 0.64, "vqa_action_accuracy": 0.2,
               "vqa_family/facing": 0.75, "vqa_family/torso_lean": 0.5, "runs": 2.0}
    rules = {"vqa_accuracy": 1.0, "vqa_depth_accuracy": 1.0, "vqa_nondepth_accuracy": 1.0,
             "BLEU-1": np.float32(0.73), "BLEU-4": 0.55, "ROUGE-L": 0.52, "CIDEr": 0.3,
             "latency_p50_ms": 0.9, "vqa_family/facing": 1.0}
    methods = {"rules_3d": rules, "student": student}
    targets = check_targets({"student": student,
                             "teacher": {"vqa_accuracy": 0.8},  # 75 % of the teacher: missed
                             "baseline_2d": {"vqa_depth_accuracy": 0.4}})  # +15 points: met
    assert not targets["student_of_teacher_vqa_pct"]["met"]
    assert targets["student_vs_baseline_2d_depth_points"]["met"]
    return {"settings": {"eval_poses": 3, "latency": "batch 1"},
            "sets": {"test": {"poses": 3, "questions": 9, "methods": methods}},
            "methods": methods, "targets": targets,
            "learning_curve": [{"labelled_fraction": 0.05, "student": 0.6, "baseline_2d": 0.5},
                               {"labelled_fraction": 0.2, "labelled_poses": 400, "student": 0.7,
                                "baseline_2d": 0.55}]}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    paths = write_report(str(folder), _report())
    return folder, paths


def test_write_report_writes_every_file(written):
    folder, paths = written
    names = {"report.json", "report.md", "test_vqa.png", "test_captions.png", "test_latency.png",
             "learning_curve.png"}
    assert {os.path.basename(p) for p in paths} == names
    assert set(os.listdir(folder)) == names
    assert all(os.path.isfile(p) for p in paths)


def test_report_json_round_trips(written):
    folder, _ = written
    data = json.loads((folder / "report.json").read_text())
    assert data["methods"]["student"]["vqa_accuracy"] == pytest.approx(0.6)
    # numpy float written as a number
    assert data["methods"]["rules_3d"]["BLEU-1"] == pytest.approx(0.73)
    assert data["sets"]["test"]["poses"] == 3 and data["sets"]["test"]["questions"] == 9
    assert data["sets"]["test"]["methods"]["student"]["vqa_family/facing"] == pytest.approx(0.75)
    assert data["sets"]["test"]["methods"]["student"]["caption_precision"] == pytest.approx(0.812)
    assert data["targets"]["student_of_teacher_vqa_pct"]["met"] is False
    assert data["targets"]["student_of_teacher_vqa_pct"]["value"] == pytest.approx(75.0)
    assert data["learning_curve"][1]["labelled_poses"] == 400
    expected = json.loads(json.dumps(_report(), default=float))
    assert data == expected


def test_report_md_has_tables_targets_and_curve(written):
    folder, _ = written
    md = (folder / "report.md").read_text()
    assert md == markdown(_report())
    lines = md.splitlines()
    assert "# Pose2Lang3D evaluation" in lines
    assert "- eval_poses: 3" in lines
    assert any(line.startswith("## test (3 poses, 9 questions)") for line in lines)
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ")}
    student = [c.strip() for c in rows["student"].split("|")[2:-1]]
    rules = [c.strip() for c in rows["rules_3d"].split("|")[2:-1]]
    header = [c.strip() for c in rows["method"].split("|")[2:-1]]
    assert len(student) == len(rules) == len(header)
    s, r = dict(zip(header, student)), dict(zip(header, rules))
    assert s["vqa_accuracy"] == "0.600 ± 0.050"
    assert s["BLEU-4"] == "0.300" and s["latency_p50_ms"] == "2.3"
    assert s["pose_to_text_R@1"] == "-"  # not measured
    # what captions claim beside how they read; the action family apart from the geometry
    assert header.index("caption_precision") == header.index("BLEU-4") + 1
    assert s["caption_precision"] == "0.812" and r["caption_precision"] == "-"
    assert s["vqa_geometry_accuracy"] == "0.640" and s["vqa_action_accuracy"] == "0.200"
    assert r["vqa_accuracy"] == "1.000" and r["METEOR"] == "-" and r["BLEU-1"] == "0.730"
    # student before rules_3d in every table
    assert md.index("| student |") < md.index("| rules_3d |")
    # per-family accuracy
    assert rows["facing"].replace(" ", "") == "|facing|0.750|1.000|"
    assert rows["torso_lean"].replace(" ", "") == "|torso_lean|0.500|-|"
    # targets: missed ones say so, met ones say yes
    teacher = next(line for line in lines if "90 % of the teacher" in line)
    assert "**MISSED**" in teacher and "75.00" in teacher
    baseline = next(line for line in lines if "student over baseline_2d on needs_depth" in line)
    assert baseline.rstrip().endswith("| yes |") and "15.00" in baseline
    assert md.count("MISSED") == 1
    # learning curve
    assert "| 0.05 | ? | 0.600 | 0.500 |" in lines
    assert "| 0.2 | 400 | 0.700 | 0.550 |" in lines


def test_charts_are_png_files(written):
    folder, _ = written
    for name in ("test_vqa.png", "test_captions.png", "test_latency.png", "learning_curve.png"):
        blob = (folder / name).read_bytes()
        assert blob[:8] == PNG_SIGNATURE, name
        assert blob[12:16] == b"IHDR" and len(blob) > 1000, name


def test_report_without_targets_or_curve(tmp_path):
    report = _report()
    report["targets"] = {}
    report["learning_curve"] = []
    paths = write_report(str(tmp_path), report)
    assert {os.path.basename(p) for p in paths} == {"report.json", "report.md", "test_vqa.png",
                                                     "test_captions.png", "test_latency.png"}
    md = (tmp_path / "report.md").read_text()
    assert "## Targets" not in md and "Learning curve" not in md and "MISSED" not in md
    assert not (tmp_path / "learning_curve.png").exists()


def test_a_set_without_latency_gets_no_latency_chart(tmp_path):
    """Latency is timed on the test split only: a real set's chart would be a row of zeros."""
    report = _report()
    methods = report["sets"]["test"]["methods"]
    report["sets"]["cmu_walk"] = {"poses": 3, "questions": 9, "methods": {
        name: {k: v for k, v in m.items() if "latency" not in k} for name, m in methods.items()}}
    names = {os.path.basename(p) for p in write_report(str(tmp_path), report)}
    assert {"test_latency.png", "cmu_walk_vqa.png", "cmu_walk_captions.png"} <= names
    assert "cmu_walk_latency.png" not in names and not (tmp_path / "cmu_walk_latency.png").exists()


def _summary_report(student_depth: float) -> dict:
    def method(vqa, depth, bleu, **kw):
        return {"vqa_accuracy": vqa, "vqa_depth_accuracy": depth, "BLEU-4": bleu, **kw}

    test = {"student": method(0.888, student_depth, 0.438, latency_p50_ms=26.5,
                              answer_latency_p50_ms=2.9),
            "baseline_2d": method(0.863, 0.770, 0.372, latency_p50_ms=26.8,
                                  answer_latency_p50_ms=3.1),
            "rules_3d": method(1.0, 1.0, 0.537)}
    walk = {"student": method(0.652, 0.6, 0.2), "rules_3d": method(1.0, 1.0, 0.5)}
    return {"methods": test, "sets": {"test": {"poses": 300, "methods": test},
                                      "cmu_walk": {"poses": 249, "methods": walk}}}


def test_the_summary_table_shows_each_method_and_each_real_set():
    from p2l3d_core.evaluation.report import summary_table

    text = summary_table(_summary_report(0.814))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("method"))
    assert header.split() == ["method", "VQA", "VQA", "depth", "BLEU-4", "answer", "ms",
                              "caption", "ms", "VQA", "cmu_walk"]
    rows = [line.split() for line in lines[lines.index(header) + 2:]]
    rows = rows[:rows.index([])]
    assert [r[0] for r in rows] == ["student", "baseline_2d", "rules_3d"]  # the report's order
    assert rows[0] == ["student", "0.888", "0.814", "0.438", "2.9", "26.5", "0.652"]
    assert rows[1][-1] == "-" and rows[2][4:6] == ["-", "-"]  # not measured: a dash, not a zero
    assert "test split: 300 poses" in text
    assert "student vs baseline_2d on depth questions: +4.4 points (ahead as expected)" in text


def test_the_summary_says_plainly_when_the_student_is_not_ahead():
    from p2l3d_core.evaluation.report import summary_table

    text = summary_table(_summary_report(0.780))
    assert "student vs baseline_2d on depth questions: +1.0 points (NOT the +3 points" in text
    assert "make study" in text
