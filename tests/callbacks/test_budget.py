"""CPUBudget: a fit stops once its training batches have used the budget of CPU time."""

import lightning as L
import pytest

from lit_gan.callbacks import CPUBudget
from lit_gan.data import EmbeddedMNIST
from lit_gan.models import GAN
from tests.conftest import tiny


def test_training_stops_after_the_budget_and_not_before(trainer_kwargs):
    budget = CPUBudget(minutes=0.004)  # 0.24 CPU-seconds
    model = tiny(GAN)
    trainer = L.Trainer(**{**trainer_kwargs, "limit_train_batches": 1.0, "max_epochs": 3, "limit_val_batches": 0},
                        callbacks=[budget])
    trainer.fit(model, datamodule=EmbeddedMNIST(batch_size=64))
    assert budget.spent >= 0.24 and 0 < model.batches_seen < 3 * (4500 // 64)
    per_batch = budget.spent / model.batches_seen
    assert budget.spent - per_batch < 0.24 + 0.05  # stopped at the first batch past the budget (timer noise aside)
    assert budget.state_dict() == {"spent": budget.spent}


def test_a_budget_must_be_positive():
    with pytest.raises(ValueError, match="minutes must be a number > 0"):
        CPUBudget(minutes=0)
