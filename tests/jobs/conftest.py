"""Job scripts imported as modules, so tests call their ``parse_args`` or
``main`` in-process: refusing bad arguments needs no fresh interpreter (each costs seconds of
imports). The end-to-end tests still run the scripts as users do."""

import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def _import_job(name: str):
    sys.path.insert(0, str(JOBS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(JOBS))


@pytest.fixture(scope="module")
def distill_job():
    return _import_job("distill")


@pytest.fixture(scope="module")
def train_teacher_job():
    return _import_job("train_teacher")


@pytest.fixture(scope="module")
def evaluate_job():
    return _import_job("evaluate")


@pytest.fixture(scope="module")
def render_job():
    return _import_job("render_dataset")


@pytest.fixture(scope="module")
def describe_job():
    return _import_job("describe")


@pytest.fixture(scope="module")
def batch_caption_job():
    return _import_job("batch_caption")


@pytest.fixture
def call_main(capsys, caplog) -> Callable[..., tuple[int, str]]:
    """``call_main(job, *argv)`` -> (exit code, everything it printed or logged)."""

    def call(job, *argv: str) -> tuple[int, str]:
        caplog.set_level(logging.INFO)
        try:
            code = job.main(list(argv))
        except SystemExit as exit_:  # argparse's refusals
            code = exit_.code
        out = capsys.readouterr()
        return code, out.out + out.err + caplog.text

    return call
