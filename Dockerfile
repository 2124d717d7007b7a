# syntax=docker/dockerfile:1
# The Pose2Lang3D image for Ray clusters (cluster/aws-cluster.yaml, cluster/kuberay/*.yaml):
# Ray 2.60.0 on Python 3.11, torch 2.13.0, this repository installed in /app (the RayJobs'
# working_dir), and the 2D pose estimator's model files fetched at build time.
#
#   CPU: docker build -t YOUR-REGISTRY/p2l3d:2.60-cpu .
#   GPU: docker build -t YOUR-REGISTRY/p2l3d:2.60-gpu \
#          --build-arg BASE_IMAGE=rayproject/ray:2.60.0-py311-gpu \
#          --build-arg TORCH_INDEX_URL=https://pypi.org/simple .
#
# The CPU image takes torch from PyTorch's CPU wheel index (no multi-GB CUDA libraries); the GPU
# image takes PyPI's build, which brings its own CUDA runtime and needs only the host's driver.
# The Ray version of the base image, of the constraint below and of every manifest's rayVersion
# must agree (tests/cluster/test_manifests.py checks it).
ARG BASE_IMAGE=rayproject/ray:2.60.0-py311
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# Java runs pycocoevalcap's METEOR in the evaluation stage (without it METEOR is skipped).
USER 0
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends default-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /app /opt/p2l3d/pose_models \
    && chown 1000:100 /app /opt/p2l3d/pose_models

# The ray image's own non-root user, ray (uid 1000, group users = 100), runs everything below
# and the containers.
USER 1000:100
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 \
    P2L3D_POSE_MODELS=/opt/p2l3d/pose_models \
    PYTHONPATH=/app

# torch first and pinned, so that installing the package never swaps it (as the Makefile does);
# Ray stays at the base image's 2.60.0.
RUN printf 'ray==2.60.0\ntorch==2.13.0\n' > /home/ray/constraints.txt \
    && pip install torch==2.13.0 --index-url "${TORCH_INDEX_URL}"

# Dependencies before the code: a code change does not reinstall them.
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 p2l3d_core/version.py p2l3d_core/__init__.py p2l3d_core/
RUN pip install -c /home/ray/constraints.txt -e .

COPY --chown=1000:100 . .
RUN pip install -c /home/ray/constraints.txt --no-deps -e . \
    && python -m p2l3d_core.inference.model_files fetch --folder /opt/p2l3d/pose_models \
    && python -c "import ray, torch; assert ray.__version__ == '2.60.0', ray.__version__"
