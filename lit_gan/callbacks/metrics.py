"""The evaluation metrics of the generator (:data:`lit_gan.metrics.registry.METRICS`: FID, KID, IS,
precision/recall, mode coverage, nearest neighbours, ...), as a Callback: every N epochs during fit,
and under ``lit-gan validate`` / ``lit-gan test``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lit_gan.images import save_grid
from lit_gan.models.contract import is_generative
from lit_gan.metrics import cache
from lit_gan.metrics.classifier import STEPS, load_checkpoint, load_or_train
from lit_gan.metrics.evaluate import Report, Settings, evaluate
from lit_gan.metrics.extractors import ClassifierExtractor, FeatureExtractor, InceptionExtractor, inception_weights
from lit_gan.metrics.modes import is_stacked, stacked_classifier
from lit_gan.metrics.registry import declared, directions
from lit_gan.tracking import log_image

TEST_SEED_OFFSET = 1_000_003
"""``test`` draws its samples (noise, labels, real subset, KID subsets) with ``settings.seed`` plus
this: other samples than ``validate``'s, so a test score is not a validation score repeated."""


class Evaluation(L.Callback):
    """Evaluates ``model.generate`` (in eval mode: the EMA generator when there is one) against
    the data module's real images and logs ``{val,test}/<name>`` for every value of the metrics in
    :data:`lit_gan.metrics.registry.METRICS` whose inputs there are (:func:`lit_gan.metrics.evaluate`:
    the same set without a Trainer). Class metrics come from a classifier of the dataset; on data
    whose channels stack a single-channel source (``source_data()``: StackedMNIST) it is the
    source's classifier applied per channel, which also counts the modes of data with many
    (``mode_samples``).

    Runs in ``on_validation_epoch_end`` (so ``BestCheckpoint(monitor="val/fid")`` sees it; not
    in the sanity check) every ``every_n_epochs`` epochs of a fit, at every ``validate``, and in
    ``on_test_epoch_end``. Validation (fit, ``validate``) measures against ``settings.real_split``
    (the training images by default); ``test`` against the data's test split, always, with other
    noise (``settings.seed + TEST_SEED_OFFSET``): ``protocol.real_split`` says which. Data whose
    test split is its val split (EmbeddedMNIST, MNIST, CIFAR-10, ImageFolder, a prepared dataset
    without a test folder) say so (``protocol.test_is_val``, and a warning).

    Writes ``<run>/neighbours/<name>.png`` (each row: a sample, then its nearest real images) and
    ``<run>/metrics/<name>.json`` (metrics + protocol), ``<name>`` being ``epoch_NNN`` in a fit and
    ``validate-<checkpoint>``/``test-<checkpoint>`` otherwise; sends the
    picture to the loggers that show images (``lit_gan.tracking.log_image``: W&B, TensorBoard) and
    the protocol to their hyperparameters (``evaluation_protocol``).

    DDP: global rank 0 generates and computes everything, then broadcasts the numbers so every
    rank logs the same values (ranks hold identical generators, so splitting the work would only
    save time, at the price of gathers and per-rank seeds). Metrics run in fp32 with autocast
    off. The feature networks live in this callback, never in the model or its checkpoints.

    Args:
        every_n_epochs: evaluate after every n-th training epoch's validation (0: only under
            validate/test).
        extractor: "classifier" (a CNN trained on the dataset itself: offline, fast, needs labels),
            "inception" (torch-fidelity's Inception-v3, the standard FID network), or "auto":
            Inception for unlabelled data, and for datasets papers report on (CIFAR-10, CelebA)
            when its weights are at hand (the classifier's FID is logged beside, as
            ``fid_classifier``); the classifier otherwise.
        class_metrics: mode coverage (and label accuracy, per-class FID for conditional models)
            from the dataset classifier; needs labelled data.
        classifier_path: a checkpoint from ``lit-gan fit --config configs/<data>/classifier.yaml``;
            None: train one on the training split (``classifier_steps``) and cache it.
        classifier_steps: optimizer steps (of 128 images) of that automatic training: a fixed
            budget, the same for any dataset size (about a CPU-minute at 28 px).
        classifier_epochs: train for this many passes over the training split instead.
        feature_extractor_weights_path: the Inception weights file (None: the torch hub cache,
            downloaded by torch-fidelity on first use).
        settings: what is computed on how many samples (:class:`~lit_gan.metrics.Settings`:
            ``num_fake``, ``num_real``, ``real_split`` (validation's reference; ``test`` always
            takes the test split), KID/IS/precision-recall parameters, the seed and the cache
            directory), e.g. ``--evaluation.settings.num_fake 10000``.
    """

    def __init__(
        self,
        every_n_epochs: int = 5,
        extractor: Literal["auto", "classifier", "inception"] = "auto",
        class_metrics: bool = True,
        classifier_path: str | None = None,
        classifier_steps: int = STEPS,
        classifier_epochs: int | None = None,
        feature_extractor_weights_path: str | None = None,
        settings: Settings = Settings(),
    ) -> None:
        if extractor not in ("auto", "classifier", "inception"):
            raise ValueError(f"extractor must be 'auto', 'classifier' or 'inception', got {extractor!r}")
        if every_n_epochs < 0:
            raise ValueError(f"every_n_epochs must be >= 0 (0: only under validate/test), got {every_n_epochs}")
        self.every_n_epochs, self.extractor = every_n_epochs, extractor
        self.class_metrics, self.classifier_path = class_metrics, classifier_path
        self.classifier_steps, self.classifier_epochs = classifier_steps, classifier_epochs
        self.progress = True  # bars for the classifier, the real statistics and the samples
        self.weights_path = feature_extractor_weights_path
        self.settings = Settings.parse(settings)
        self.last: Report | None = None
        self._nets: dict[str, Any] = {}
        self._protocol_logged = False

    # ----- networks (built once per dataset, on first use) ------------------------------------
    def networks(self, model: Any, datamodule: Any) -> tuple[FeatureExtractor, FeatureExtractor | None, dict | None]:
        """(feature extractor, classifier extractor or None, classifier record) for this data."""
        key = cache.digest(cache.dataset_spec(datamodule))
        if self._nets.get("key") != key:
            # hooks may run in inference mode (the nets outlive it); building must not move the training RNG
            with torch.inference_mode(False), torch.random.fork_rng(devices=[]):
                self._nets = {"key": key, "nets": self._build(model, datamodule)}
        features, classifier, record = self._nets["nets"]
        for net in (features, classifier):
            if net is not None:
                net.to(model.device)
        return features, classifier, record

    def extractor_for(self, datamodule: Any) -> str:
        """'auto' is Inception for unlabelled data and, when its weights are at hand, for the
        datasets papers report on (``paper_benchmark``); the dataset classifier otherwise."""
        if self.extractor != "auto":
            return self.extractor
        if datamodule.num_classes < 2:
            return "inception"
        benchmark = getattr(datamodule, "paper_benchmark", False)
        return "inception" if benchmark and inception_weights(self.weights_path) is not None else "classifier"

    def _build(self, model: Any, datamodule: Any) -> tuple[FeatureExtractor, FeatureExtractor | None, dict | None]:
        classifier = record = None
        extractor = self.extractor_for(datamodule)
        if extractor == "classifier" or (self.class_metrics and datamodule.num_classes >= 2):
            if self.classifier_path:
                net, record = load_checkpoint(self.classifier_path, datamodule, model.device)
            elif is_stacked(datamodule):  # StackedMNIST: the source digits' classifier on each channel
                net, record = stacked_classifier(datamodule, self.settings.cache_dir, model.device)
            else:
                net, record = load_or_train(datamodule, self.settings.cache_dir, steps=self.classifier_steps,
                                            epochs=self.classifier_epochs, device=model.device, progress=self.progress)
            classifier = ClassifierExtractor(net)
        features = classifier if extractor == "classifier" else InceptionExtractor(self.weights_path)
        return features, classifier if self.class_metrics else None, record

    def settings_for(self, stage: Literal["val", "test"] = "val") -> Settings:
        """The settings of a stage: ``settings`` for validation; for ``test`` the test split as
        the real reference and other seeds (``seed + TEST_SEED_OFFSET``)."""
        if stage == "val":
            return self.settings
        if stage != "test":
            raise ValueError(f"stage must be 'val' or 'test', got {stage!r}")
        return dataclasses.replace(self.settings, real_split="test", seed=self.settings.seed + TEST_SEED_OFFSET)

    def evaluate(self, model: Any, datamodule: Any, stage: Literal["val", "test"] = "val") -> Report:
        """Every metric of ``model`` against ``datamodule`` (no Trainer needed); kept in ``self.last``.
        ``stage`` "test": against the test split, with other samples (:meth:`settings_for`)."""
        settings = self.settings_for(stage)
        features, classifier, record = self.networks(model, datamodule)
        self.last = evaluate(model, datamodule, features, settings, classifier, record, self.progress)
        if stage == "test":
            self.last.protocol["test_is_val"] = _test_is_val(datamodule)
        return self.last

    # ----- Lightning hooks ----------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Fail before training on settings that cannot work: no data module, no labels for the
        classifier, missing Inception weights."""
        self.progress = trainer.progress_bar_callback is not None
        if stage == "predict" or not _is_generator(pl_module) or (stage == "fit" and not self.every_n_epochs):
            return
        data = getattr(trainer, "datamodule", None)
        if data is None or not hasattr(data, "image_shape"):
            raise ValueError("the evaluation callback needs a lit_gan data module (trainer.fit(model, datamodule=...))")
        extractor = self.extractor_for(data)
        if extractor == "classifier" and data.num_classes < 2:
            raise ValueError(f"{type(data).__name__} has no labels, so the 'classifier' feature extractor cannot be "
                             "trained; use --evaluation.extractor inception")
        if extractor == "inception" and inception_weights(self.weights_path) is None and trainer.is_global_zero:
            InceptionExtractor(self.weights_path)  # downloads now (or fails clearly) rather than after an epoch

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if trainer.state.fn == "fit" and (not self.every_n_epochs or (trainer.current_epoch + 1) % self.every_n_epochs):
            return
        self._run(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._run(trainer, pl_module, "test")

    def _run(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not _is_generator(pl_module):
            return
        metrics = None
        if trainer.is_global_zero:
            report = self.evaluate(pl_module, trainer.datamodule, stage)  # type: ignore[arg-type]
            self._write(trainer, report, stage)
            metrics = report.metrics
        metrics = trainer.strategy.broadcast(metrics, src=0)
        pl_module.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, sync_dist=True)

    def _write(self, trainer: L.Trainer, report: Report, stage: str) -> None:
        fn = str(getattr(trainer.state.fn, "value", trainer.state.fn))
        if fn == "fit":
            name = f"epoch_{trainer.current_epoch:03d}"
        else:  # validate/test on a checkpoint, whose epoch the trainer does not restore
            name = f"{fn}-{Path(trainer.ckpt_path).stem}" if trainer.ckpt_path else fn
        root = Path(trainer.default_root_dir)
        (root / "metrics").mkdir(parents=True, exist_ok=True)
        record = json.dumps({"stage": stage, **report.as_dict()}, indent=1, default=str)
        (root / "metrics" / f"{name}.json").write_text(record)
        picture = None
        if report.neighbours is not None:
            picture = save_grid(report.neighbours.float(), root / "neighbours" / f"{name}.png",
                                nrow=self.settings.neighbour_k + 1, value_range=(0.0, 255.0))
        if picture is not None:
            log_image(trainer, "neighbours", picture)  # W&B, TensorBoard: every logger that shows images
        for logger in trainer.loggers:
            if not self._protocol_logged:
                logger.log_hyperparams({"evaluation_protocol": report.protocol})
        self._protocol_logged = True
        p, better = report.protocol, directions()
        accuracy = p["classifier_accuracy"]
        accuracy = f", classifier test accuracy {accuracy:.4f}" if accuracy is not None else ""
        split = f"{p['real_split']} (= val)" if p.get("test_is_val") else p["real_split"]
        shown = ", ".join(f"{key} {value:.4g}" for key, value in report.metrics.items()
                          if declared(key) == key and better.get(key) is not None)  # qualities, not per class
        rank_zero_info(f"{stage}: {shown} [{p['extractor']}, {p['num_fake']} generated vs {p['num_real']} {split} images "
                       f"{'x'.join(map(str, p['image_shape']))}{accuracy}; all in metrics/{name}.json]")


def _test_is_val(datamodule: Any) -> bool:
    """Whether the data's test split is its val split (no held-out set of its own): the protocol
    records it and the report says "test (= val)"."""
    return cache.split_dataset(datamodule, "test") is cache.split_dataset(datamodule, "val")


def _is_generator(module: Any) -> bool:
    ok = is_generative(module)
    if not ok:
        rank_zero_warn(f"Evaluation: {type(module).__name__} is not a generator (lit_gan.models.Generative); nothing to evaluate")
    return ok
