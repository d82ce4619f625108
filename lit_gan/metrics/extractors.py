"""Feature extractors: uint8 images in, (features, logits) out, both float32 on the CPU.

``inception``: torch-fidelity's Inception-v3 FID network (``'2048'`` pool features and
``'logits_unbiased'``). ``classifier``: a :class:`~lit_gan.metrics.Classifier` of the dataset
(penultimate features and class logits). Images of any size and 1 or 3 channels.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import Tensor, nn
from torch_fidelity import feature_extractor_inceptionv3 as fidelity_inception

from lit_gan.metrics.classifier import Classifier, uint8_to_input
from lit_gan.progress import bar
from lit_gan.util import download_or_raise

INCEPTION_URL: str = fidelity_inception.URL_INCEPTION_V3
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[-1]
INCEPTION_ALIASES = (INCEPTION_FILE, "pt_inception-2015-12-05-6726825d.pth")
"""torch-fidelity's file, then pytorch-fid's conversion of the same TensorFlow FID graph (2015-12-05),
whose parameter names match torch-fidelity's network; both are looked for in the torch hub cache."""


class FeatureExtractor:
    """Base: ``name`` (for the protocol), ``key`` (identity for caches), ``__call__`` on uint8 images."""

    name: str = ""
    key: str = ""
    net: nn.Module

    def to(self, device: torch.device | str) -> FeatureExtractor:
        self.net.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(features (N, D), logits (N, K)) of uint8 images (N, C, H, W), fp32, outside autocast."""
        with torch.autocast(self.device.type, enabled=False):
            features, logits = self.extract(images.to(self.device))
        return features.float().cpu(), logits.float().cpu()

    def extract(self, images: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


def extract(extractor: FeatureExtractor, images: Tensor, batch_size: int, desc: str = "") -> tuple[Tensor, Tensor]:
    """Features and logits of uint8 ``images``, ``batch_size`` at a time (a progress bar named ``desc``)."""
    chunks = images.split(batch_size)
    parts = [extractor(chunk) for chunk in bar(chunks, len(chunks), desc, "batch", enabled=bool(desc))]
    return torch.cat([f for f, _ in parts]), torch.cat([lg for _, lg in parts])


class ClassifierExtractor(FeatureExtractor):
    """Penultimate features and class logits of a dataset classifier."""

    def __init__(self, classifier: Classifier) -> None:
        self.net = classifier.eval()
        self.name = f"classifier(width={classifier.hparams.width})"
        weights = b"".join(t.detach().cpu().contiguous().numpy().tobytes() for t in classifier.state_dict().values())
        self.key = "classifier-" + hashlib.sha256(weights).hexdigest()[:16]

    def extract(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.net.features(uint8_to_input(images))
        return features, self.net.head(features)


class InceptionExtractor(FeatureExtractor):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` (images resized to 299 inside it)."""

    def __init__(self, weights_path: str | None = None) -> None:
        path = inception_weights(weights_path)
        network, features = fidelity_inception.FeatureExtractorInceptionV3, ["2048", "logits_unbiased"]
        if path is not None:
            self.net = network("inception-v3-compat", features, feature_extractor_weights_path=path)
        else:  # torch-fidelity downloads the weights into the torch hub cache
            built: list[nn.Module] = []

            def build() -> None:
                built.append(network("inception-v3-compat", features, verbose=False))

            download_or_raise(build, FileNotFoundError(missing_inception_message()))
            self.net, path = built[0], str(hub_checkpoints() / INCEPTION_FILE)
        self.name = "inception-v3-compat"
        self.key = f"inception-{Path(path).name}-{Path(path).stat().st_size if Path(path).is_file() else 0}"

    def extract(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return self.net(images.contiguous())


def hub_checkpoints() -> Path:
    """The torch hub checkpoints folder where torch-fidelity downloads (and looks for) weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def missing_inception_message(path: str | None = None) -> str:
    where = f"{path} does not exist" if path else f"{hub_checkpoints() / INCEPTION_FILE} is not there"
    return (
        f"Inception-v3 FID weights not found: {where}. Download {INCEPTION_FILE} ({INCEPTION_URL}) and put it "
        f"in {hub_checkpoints()} (the torch hub cache torch-fidelity reads; pytorch-fid's conversion "
        f"{INCEPTION_ALIASES[1]} is accepted there too), or pass its path as feature_extractor_weights_path "
        f"(--evaluation.feature_extractor_weights_path), or use extractor 'classifier' (a classifier trained on "
        f"the dataset itself, works offline)"
    )


def inception_weights(path: str | None = None) -> str | None:
    """The weights file to load: ``path`` (must exist), else one found in the torch hub cache,
    else None (torch-fidelity will download it)."""
    if path is not None:
        if not Path(path).is_file():
            raise FileNotFoundError(missing_inception_message(str(path)))
        return str(path)
    found = [hub_checkpoints() / name for name in INCEPTION_ALIASES if (hub_checkpoints() / name).is_file()]
    return str(found[0]) if found else None
