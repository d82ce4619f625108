"""A small CNN classifier of the dataset itself: the offline, fast feature extractor.

Train it like any model (``lit-gan fit --config configs/mnist/classifier.yaml``) or let
:func:`load_or_train` train and cache one the first time a metric needs it.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn

from lit_gan.metrics import cache
from lit_gan.progress import bar
from lit_gan.checkpoint_io import read_checkpoint

Batch = tuple[Tensor, Tensor]


WIDTH = 32
"""Channels of the classifier's first convolution."""
BATCH = 128
"""Images per step of its training."""


class Classifier(L.LightningModule):
    """Three conv blocks (BN, ReLU; width, 2*width, 4*width channels; two 4x4 stride-2, then 3x3),
    global average pooling to the ``4 * width`` penultimate features, and a linear layer to class logits.

    Inputs are images in [-1, 1] (batches from a data module in [0, 1] are rescaled). Logs
    ``{train,val,test}/loss`` and ``{train,val,test}/acc``.

    Args:
        image_shape: (C, H, W); the CLI links it from the data.
        num_classes: classes to predict (>= 2); the CLI links it from the data.
        width: channels of the first convolution.
        lr: Adam's peak learning rate (one-cycle schedule over the whole run).
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10,
                 width: int = WIDTH, lr: float = 3e-3) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"the classifier needs labelled data with >= 2 classes, got num_classes={num_classes}; "
                             "use the 'inception' feature extractor for unlabelled data")
        self.save_hyperparameters()
        c, w = image_shape[0], width

        def block(cin: int, cout: int, kernel: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, kernel, stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(*block(c, w, 4, 2), *block(w, 2 * w, 4, 2), *block(2 * w, 4 * w, 3, 1),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * w, num_classes)
        self.input_range = (-1.0, 1.0)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features (N, 4 * width) of images in [-1, 1]."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits of images in [-1, 1]."""
        return self.head(self.body(x))

    def loss_and_accuracy(self, batch: Batch) -> tuple[Tensor, Tensor]:
        images, labels = batch
        low, high = self.input_range
        if (low, high) != (-1.0, 1.0):
            images = (images - low) * (2.0 / (high - low)) - 1.0
        logits = self(images)
        return F.cross_entropy(logits, labels), (logits.argmax(1) == labels).float().mean()

    def _step(self, batch: Batch, stage: str) -> Tensor:
        loss, acc = self.loss_and_accuracy(batch)
        self.log_dict({f"{stage}/loss": loss, f"{stage}/acc": acc}, prog_bar=stage != "train", sync_dist=stage != "train")
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def make_optimizer(self, total_steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """Adam with a one-cycle schedule peaking at ``lr`` over ``total_steps`` steps."""
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, self.hparams.lr, total_steps=max(1, total_steps))

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer, schedule = self.make_optimizer(int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def setup(self, stage: str) -> None:
        data = getattr(self.trainer, "datamodule", None)
        self.input_range = tuple(getattr(data, "value_range", (-1.0, 1.0)))


def uint8_to_input(images: Tensor) -> Tensor:
    """uint8 images -> float32 in [-1, 1], the classifier's input."""
    return images.float().div_(127.5).sub_(1.0)


@torch.no_grad()
def accuracy(model: Classifier, images: Tensor, labels: Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on uint8 ``images``."""
    model.eval()
    device, correct = model.device, 0
    for x, y in zip(images.split(batch_size), labels.split(batch_size)):
        correct += int((model(uint8_to_input(x.to(device))).argmax(1).cpu() == y).sum())
    return correct / max(1, len(labels))


STEPS = 1500
"""Optimizer steps of the automatic training, whatever the dataset's size: a fixed budget (about
192,000 images at batch 128; 59 CPU-seconds of one core on Fashion-MNIST) that reaches test
accuracy 0.897 on Fashion-MNIST and 0.976 on the embedded MNIST. Features, not records."""


def train(model: Classifier, images: Tensor, labels: Tensor, steps: int, batch_size: int = BATCH, seed: int = 0,
          progress: bool = False) -> Classifier:
    """Fit ``model`` on uint8 ``images`` for ``steps`` optimizer steps with its own loss, optimizer
    and one-cycle schedule (batches from seeded shuffles, incomplete ones dropped), in a plain loop:
    it runs inside a running Trainer (e.g. on rank 0 of a DDP fit) without nesting another one."""
    torch.manual_seed(seed)
    order_rng = torch.Generator().manual_seed(seed)
    batch_size = min(batch_size, len(images))
    per_epoch = len(images) // batch_size
    optimizer, schedule = model.make_optimizer(steps)
    model.train()
    with bar(total=steps, desc="classifier", unit="step", enabled=progress) as shown:
        for step in range(steps):
            if step % per_epoch == 0:
                order = torch.randperm(len(images), generator=order_rng)
            idx = order[(step % per_epoch) * batch_size:][:batch_size]
            x, y = uint8_to_input(images[idx].to(model.device)), labels[idx].to(model.device)
            loss, _ = model.loss_and_accuracy((x, y))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            shown.update()
    return model.eval()


SHIPPED = Path(__file__).with_name("shipped")
"""Classifiers that ship with lit_gan, made by `python bench/classifier.py --ship` exactly as
:func:`load_or_train` makes them: cache entries under their cache key's file name, each loaded only
when its SHA-256 matches `SHIPPED/SHA256SUMS`."""


def shipped(name: str) -> Path | None:
    """The shipped cache entry `name` when there is one and its SHA-256 is the recorded one."""
    path, sums = SHIPPED / name, SHIPPED / "SHA256SUMS"
    if not path.is_file() or not sums.is_file():
        return None
    recorded = {file: digest for digest, file in (line.split() for line in sums.read_text().splitlines() if line.strip())}
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if recorded.get(name) != actual:
        rank_zero_warn(f"{path} does not match its SHA-256 in {sums}: not used; the classifier is trained instead")
        return None
    return path


def load_or_train(datamodule: Any, cache_root: str | Path | None = None, width: int = WIDTH, lr: float = 5e-3,
                  steps: int = STEPS, batch_size: int = BATCH, seed: int = 0, device: torch.device | str = "cpu",
                  epochs: int | None = None, progress: bool = True, use_shipped: bool = True) -> tuple[Classifier, dict[str, Any]]:
    """The classifier of ``datamodule``'s training split: from the cache, else shipped with lit_gan
    (``use_shipped``: the same key, made by the same training; EmbeddedMNIST's default), else
    trained now (and cached).

    It trains for ``steps`` optimizer steps of ``batch_size`` images (or, given ``epochs``, that
    many passes over the split), says once what it does and where it caches, and shows a progress
    bar (``progress``). Returns the model (eval mode, on ``device``) and its record:
    ``test_accuracy`` (on the data's test split), ``train_seconds``, ``steps``, ``epochs``,
    ``path``. The cache key is the dataset (:func:`cache.dataset_spec` + split fingerprints) and
    the training settings; the same key always gives the same classifier.
    """
    spec = cache.dataset_spec(datamodule)
    if datamodule.num_classes < 2:
        raise ValueError(f"{spec['class']} has no labels: the 'classifier' feature extractor needs labelled data; "
                         "use extractor 'inception'")
    if epochs is not None:
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ValueError(f"classifier epochs must be a positive integer (or None: {STEPS} steps), got {epochs!r}")
        n = len(cache.split_dataset(datamodule, "train"))  # type: ignore[arg-type]
        steps = epochs * max(1, n // min(batch_size, n))
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"classifier steps must be a positive integer, got {steps!r}")
    key = cache.digest(spec, cache.fingerprint(datamodule, "train"), cache.fingerprint(datamodule, "test"),
                       width, lr, steps, batch_size, seed)
    path = cache.cache_dir(cache_root) / "classifiers" / f"{spec['class']}-{key}.pt"
    hparams = {"image_shape": tuple(datamodule.image_shape), "num_classes": datamodule.num_classes, "width": width, "lr": lr}
    stored = cache.load(path)
    if stored is None and use_shipped and (ship := shipped(path.name)) is not None:
        stored, path = cache.load(ship), ship
    # callers may be inside a validation loop's inference mode (the weights must be normal tensors)
    # or in a training run (whose RNG must not move)
    with torch.inference_mode(False), torch.enable_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(key, 16) % 2**31)  # the same cache key always gives the same classifier
        model = Classifier(**hparams)
        if stored is not None:
            model.load_state_dict(stored["state_dict"])
            return model.to(device).eval(), {**stored["record"], "path": str(path)}
        images, labels = cache.split_tensors(datamodule, "train")
        rank_zero_info(f"Training the {spec['class']} classifier for the evaluation's features ({steps} steps of "
                       f"{min(batch_size, len(images))} images; once per dataset, cached in {path})")
        start = time.perf_counter()
        train(model.to(device), images, labels, steps, batch_size, seed, progress)
    seconds = time.perf_counter() - start
    record = {"test_accuracy": accuracy(model, *cache.split_tensors(datamodule, "test")), "train_seconds": seconds,
              "steps": steps, "batch_size": batch_size, "train_images": len(images),
              "epochs": epochs if epochs is not None else round(steps * min(batch_size, len(images)) / len(images), 2),
              "dataset": spec}
    weights = {k: v.cpu() for k, v in model.state_dict().items()}
    cache.save({"state_dict": weights, "record": record, "hparams": hparams}, path)
    rank_zero_info(f"Trained the {spec['class']} classifier in {seconds:.1f} s: test accuracy "
                   f"{record['test_accuracy']:.4f}")
    return model, {**record, "path": str(path)}


def load_checkpoint(path: str | Path, datamodule: Any,
                    device: torch.device | str = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """A classifier trained with ``lit-gan fit`` (a Lightning checkpoint) and its accuracy on the
    data's test split; its image shape and classes must match the data."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"classifier checkpoint {path} not found; train one with "
                                "`lit-gan fit --config configs/<dataset>/classifier.yaml` or leave classifier_path unset")
    checkpoint = read_checkpoint(path)  # weights_only: a shared classifier file cannot run code
    hparams = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if not k.startswith("_")}
    try:
        model = Classifier(**hparams)
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, KeyError, RuntimeError) as error:
        raise ValueError(f"{path} is not a checkpoint of lit_gan's metrics Classifier: {str(error).splitlines()[0]}") from None
    model = model.to(device).eval()
    got = (tuple(model.hparams.image_shape), model.hparams.num_classes)
    want = (tuple(datamodule.image_shape), datamodule.num_classes)
    if got != want:
        raise ValueError(f"classifier {path} was trained on images {got[0]} with {got[1]} classes, "
                         f"but the data has {want[0]} with {want[1]}")
    record = {"test_accuracy": accuracy(model, *cache.split_tensors(datamodule, "test")), "path": str(path)}
    return model, record
