"""SampleGrid: the model's fixed samples as a PNG grid, one column per class, every n epochs."""

import io

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lit_gan.callbacks import SampleGrid
from lit_gan.models import CDCGAN, DCGAN
from lit_gan.tracking import log_image
from tests.conftest import tiny
from tests.models.test_base import batches


class ImageLogger(CSVLogger):
    """A CSV logger that can show images (like W&B's): records what `log_image` sends it."""

    def __init__(self, root) -> None:
        super().__init__(root, name="images", version="")
        self.images: list[tuple[str, object, int | None]] = []

    def log_image(self, key: str, images: list, step: int | None = None) -> None:
        self.images += [(key, image, step) for image in images]


def fit(tmp_path, model, callback, epochs=2, logger=False):
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=epochs, limit_train_batches=1,
                        logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[callback], log_every_n_steps=1)
    trainer.fit(model, batches())
    return sorted(p.name for p in (tmp_path / "samples").iterdir())


def tensorboard_images(log_dir, tag: str) -> list[tuple[int, np.ndarray]]:
    """(step, HxWx3 uint8 pixels) of every image `tag` in the TensorBoard event files of `log_dir`."""
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    if tag not in events.Tags()["images"]:
        return []
    return [(e.step, np.asarray(Image.open(io.BytesIO(e.encoded_image_string)).convert("RGB")))
            for e in events.Images(tag)]


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


def test_grids_reach_tensorboard_and_image_loggers_and_csv_gets_none(tmp_path):
    """One grid per epoch into TensorBoard (as an image, at the step of the scalars) and into a logger
    with `log_image` (the PNG's path); a CSV logger beside them only gets its scalars."""
    tensorboard = TensorBoardLogger(tmp_path, name="tb", version="")
    images, csv = ImageLogger(tmp_path), CSVLogger(tmp_path, name="csv", version="")
    callback = SampleGrid()
    fit(tmp_path, tiny(CDCGAN, num_classes=10), callback, logger=[tensorboard, images, csv])
    tensorboard.finalize("success")
    shown = tensorboard_images(tensorboard.log_dir, "samples")
    assert [step for step, _ in shown] == [1, 2]  # batches: the scalars' steps (global_step counts D and G steps)
    with Image.open(callback.last_path) as grid:
        pixels = np.asarray(grid)
    assert shown[-1][1].shape == (*pixels.shape, 3) and (shown[-1][1][..., 0] == pixels).all()  # grey, as written
    scalars = EventAccumulator(tensorboard.log_dir).Reload().Tags()["scalars"]
    assert "train/d_loss" in scalars and "train/g_loss" in scalars
    paths = [str(tmp_path / "samples" / f"epoch_00{i}.png") for i in (0, 1)]
    assert images.images == [("samples", paths[0], 1), ("samples", paths[1], 2)]
    assert "train/d_loss" in (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0]


def test_log_image_takes_tensors_and_skips_loggers_without_images(tmp_path):
    tensorboard = TensorBoardLogger(tmp_path, name="tb", version="")
    images, csv = ImageLogger(tmp_path), CSVLogger(tmp_path, name="csv", version="")
    trainer = L.Trainer(default_root_dir=tmp_path, accelerator="cpu", logger=[tensorboard, images, csv],
                        enable_progress_bar=False, enable_model_summary=False)
    grey = torch.linspace(0, 1, 12).reshape(3, 4)  # (H, W) float in [0, 1]
    colour = torch.arange(3 * 2 * 5, dtype=torch.uint8).reshape(3, 2, 5) * 8  # (C, H, W) uint8
    log_image(trainer, "grey", grey, step=7)
    log_image(trainer, "colour", colour, step=8)
    tensorboard.finalize("success")
    ((step, shown),) = tensorboard_images(tensorboard.log_dir, "grey")
    expected = (grey * 255).round().to(torch.uint8).numpy()
    assert step == 7 and (shown == expected[..., None]).all()
    ((step, shown),) = tensorboard_images(tensorboard.log_dir, "colour")
    assert step == 8 and (shown == colour.permute(1, 2, 0).numpy()).all()
    (key, picture, step), (_, second, _) = images.images
    assert (key, step, picture.mode, picture.size) == ("grey", 7, "L", (4, 3))
    assert (np.asarray(picture) == expected).all() and second.mode == "RGB" and second.size == (5, 2)
    assert not (tmp_path / "csv" / "metrics.csv").exists()  # nothing was logged to it, and nothing failed
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        log_image(trainer, "batch", torch.zeros(2, 1, 4, 4))
