"""Training configuration -> the DeepSpeed config each worker hands to ``deepspeed.initialize``."""

import pytest

from p2l3d_core.training.config import TrainConfig, deepspeed_config
from p2l3d_core.training.runner import run_steps


def test_constant_learning_rate_has_no_scheduler():
    config = deepspeed_config(TrainConfig(lr=1e-3))
    assert "scheduler" not in config and config["optimizer"]["params"]["lr"] == 1e-3


def test_cosine_schedule_warms_up_then_anneals_over_the_runs_steps():
    params = deepspeed_config(TrainConfig(lr_schedule="cosine",
                                          total_steps=400))["scheduler"]["params"]
    assert params["total_num_steps"] == 400 and params["warmup_num_steps"] == 20  # 5 %
    assert params["warmup_type"] == "linear" and params["cos_min_ratio"] == 0.01


def test_cosine_schedule_without_its_length_or_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="needs total_steps"):
        deepspeed_config(TrainConfig(lr_schedule="cosine"))
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, cosine"):
        TrainConfig(lr_schedule="step")


def test_run_steps_counts_full_batches_of_each_workers_share():
    # 18,282 rows on 2 workers: 9,141 each, 142 full batches of 64, 12 epochs.
    assert run_steps(18_282, TrainConfig(epochs=12, batch_size=64), 2) == 142 * 12
    assert run_steps(18_282, TrainConfig(epochs=12, batch_size=64, grad_accum=2), 2) == 71 * 12
    assert run_steps(10, TrainConfig(epochs=1, batch_size=64), 2) == 1  # never 0


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs must be >= 1, got 0"),
    ("batch_size", 0, "batch_size must be >= 1, got 0"),
    ("grad_accum", 0, "grad_accum must be >= 1, got 0"),
    ("lr", 0.0, "lr must be > 0, got 0.0"),
    ("labelled_fraction", 0.0, r"labelled_fraction must be in \(0, 1\], got 0.0"),
    ("labelled_fraction", 1.5, r"labelled_fraction must be in \(0, 1\], got 1.5"),
    ("language", "text", "language must be '3d' or '2d', got 'text'"),
    ("match", "l1", "match must be 'cosine' or 'mse', got 'l1'"),
    ("rkd_weight", -1.0, "rkd_weight must be >= 0, got -1.0"),
    ("pool_captions", -1, "pool_captions must be >= 0, got -1"),
])
def test_a_run_that_cannot_train_is_refused_by_name(field, value, message):
    """Before any worker starts: a zero batch or a labelled fraction above 1 would otherwise
    surface as a hang or a cryptic error inside Ray Train."""
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})
