"""Every precision Lightning offers on a CPU trains a GAN and evaluates it (in fp32)."""

from __future__ import annotations

import math

import pytest
import torch

from lit_gan.cli import main
from tests.fixtures import TINY_MODEL

pytestmark = pytest.mark.usefixtures("cli_env")

EVALUATION = ["--evaluation.every_n_epochs=1", "--evaluation.classifier_steps=20", "--evaluation.settings.num_fake=64",
              "--evaluation.settings.num_real=64", "--evaluation.settings.kid_subset_size=32", "--evaluation.settings.kid_subsets=2",
              "--evaluation.settings.is_splits=2", "--evaluation.settings.batch_size=32"]
WEIGHTS = {"32-true": torch.float32, "16-mixed": torch.float32, "bf16-mixed": torch.float32,
           "16-true": torch.float16, "bf16-true": torch.bfloat16, "64-true": torch.float64}


@pytest.mark.parametrize("precision", list(WEIGHTS))
def test_every_precision_trains_two_batches_and_evaluates(precision: str, tmp_path):
    cli = main(["fit", "--model", "WGANGP", "--data", "EmbeddedMNIST", *TINY_MODEL, "--data.init_args.batch_size=8",
                "--data.init_args.val_size=32", "--model.init_args.opt_d.steps=1", "--trainer.max_epochs=1",
                "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--trainer.num_sanity_val_steps=0",
                "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.accelerator=cpu",
                f"--trainer.precision={precision}", f"--runs_dir={tmp_path}", *EVALUATION])
    assert cli.model.batches_seen == 2
    assert next(cli.model.generator.parameters()).dtype == WEIGHTS[precision]  # what the precision trains in
    metrics = cli.trainer.callback_metrics
    assert math.isfinite(float(metrics["val/fid"])) and float(metrics["val/fid"]) > 0
    assert all(torch.isfinite(v).all() for v in cli.model.state_dict().values() if v.is_floating_point())
