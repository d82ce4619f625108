"""SampleGrid: the model's fixed samples as a PNG grid, one column per class, every n epochs."""

import lightning as L
import numpy as np
import pytest
from PIL import Image

from lit_gan.callbacks import SampleGrid
from lit_gan.models import CDCGAN, DCGAN
from tests.conftest import tiny
from tests.models.test_base import batches




def fit(tmp_path, model, callback, epochs=2):
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=epochs, limit_train_batches=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[callback])
    trainer.fit(model, batches())
    return sorted(p.name for p in (tmp_path / "samples").iterdir())


def test_conditional_grid_has_one_column_per_class(tmp_path):
    callback = SampleGrid()
    assert fit(tmp_path, tiny(CDCGAN, num_classes=10), callback) == ["epoch_000.png", "epoch_001.png"]
    with Image.open(callback.last_path) as image:
        assert image.size == (10 * 30 + 2, 8 * 30 + 2)  # 10 columns, 8 rows of 28 px + 2 px padding
        pixels = np.asarray(image)
    assert pixels.ndim == 2 and pixels.std() > 0  # grey, and not blank


def test_every_n_epochs_and_a_final_grid_when_training_stops_between_two(tmp_path):
    names = fit(tmp_path, tiny(DCGAN), SampleGrid(every_n_epochs=2), epochs=3)
    assert names == ["epoch_001.png", "final.png"]
    with pytest.raises(ValueError, match="every_n_epochs must be >= 1"):
        SampleGrid(every_n_epochs=0)


def test_sigmoid_generator_grid_uses_its_value_range(tmp_path):
    model = tiny(DCGAN, g={"final_activation": "sigmoid"})
    callback = SampleGrid()
    fit(tmp_path, model, callback, epochs=1)
    images, _ = model.fixed_samples()
    with Image.open(callback.last_path) as image:
        first = np.asarray(image)[2:30, 2:30].astype(float)
    expected = (images[0, 0].numpy() * 255).round()  # [0, 1] -> [0, 255], not the [-1, 1] mapping
    assert np.abs(first - expected).max() <= 1
