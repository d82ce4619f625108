"""Two gloo processes train from a prepared folder whose labels number the images 0..63;
each rank saves, per epoch, the labels (= images) it read: `seen_<rank>.pt` in the output folder.

A job of tests/integration/ddp_script.py's one launch (which calls `write` before rank 1 exists,
then `fit`); alone: python tests/data/prepared_ddp_script.py OUT_DIR"""

import json
import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch

from lit_gan.data import Prepared
from lit_gan.data.prepared import FORMAT


class Record(L.LightningModule):
    def __init__(self, out: Path) -> None:
        super().__init__()
        self.out = out
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: dict[int, list[int]] = {}

    def training_step(self, batch, batch_idx):
        images, labels = batch
        self.seen.setdefault(self.current_epoch, []).extend(labels.tolist())
        return (self.weight * images.mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

    def on_train_end(self) -> None:
        torch.save({e: torch.tensor(v) for e, v in self.seen.items()}, self.out / f"seen_{self.global_rank}.pt")


def write(root: Path) -> None:
    for split, n in (("train", 64), ("val", 8)):
        (root / split).mkdir(parents=True)
        np.save(root / split / "images.npy", np.random.default_rng(0).integers(0, 256, (n, 1, 8, 8), dtype=np.uint8))
        np.save(root / split / "labels.npy", np.arange(n, dtype=np.int64))
    record = {"format": FORMAT, "image_shape": [1, 8, 8], "num_classes": 64, "class_names": [str(i) for i in range(64)],
              "source": {"class": "test", "args": {}, "identity": {"class": "test"}}, "splits": {"train": 64, "val": 8}}
    (root / "record.json").write_text(json.dumps(record))


def fit(out: Path) -> None:
    """2 epochs from `out`/prep (written by `write`) on 2 processes; each saves `out`/seen_<rank>.pt."""
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Record(out), Prepared(path=str(out / "prep"), batch_size=8))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    if not (out / "prep" / "record.json").exists():
        write(out / "prep")
    fit(out)
