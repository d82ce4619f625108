"""The Inception-v3 path without its real weights (no network here, and none in tests): a weights
file of the right architecture with *random* weights, built by the test, loaded by path; and the
clear error when the weights are missing and cannot be downloaded."""

from __future__ import annotations

import time
import urllib.error
from pathlib import Path

import lightning as L
import pytest
import torch
from torch_fidelity import feature_extractor_inceptionv3 as fidelity_inception

from lit_gan.callbacks import Evaluation
from lit_gan.metrics import Settings, extractors
from tests.metrics.fakes import RealDigits


@pytest.fixture(scope="session")
def random_inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dict of torch-fidelity's FeatureExtractorInceptionV3 with random (default-initialised)
    weights: the network is built with its weight loading stubbed out, then saved."""
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fidelity_inception, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(fidelity_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
        net = fidelity_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An empty torch hub cache, and torch-fidelity's downloader failing like a machine without
    network; returns the URLs it was asked for."""
    asked: list[str] = []

    def no_network(url: str, *args, **kwargs):
        asked.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(fidelity_inception, "load_state_dict_from_url", no_network)
    return asked


def test_inception_path_runs_with_weights_given_by_path(tmp_path, mnist, random_inception_weights, offline_hub):
    settings = Settings(num_fake=8, num_real=8, batch_size=8, is_splits=2, kid_subsets=5,
                        cache_dir=str(tmp_path / "cache"), neighbour_rows=2)
    callback = Evaluation(extractor="inception", feature_extractor_weights_path=str(random_inception_weights),
                          class_metrics=False, settings=settings)
    report = callback.evaluate(RealDigits(mnist.val_set.images, mnist.val_set.labels), mnist)
    m, protocol = report.metrics, report.protocol
    assert protocol["extractor"] == "inception-v3-compat" and "299" in protocol["resize"]
    assert protocol["num_real"] == 8 and protocol["classifier_accuracy"] is None and "label_accuracy" not in m
    assert all(torch.isfinite(torch.tensor(v)) for v in m.values()) and m["fid"] >= 0
    reference = torch.load(next((tmp_path / "cache" / "reference").iterdir()), weights_only=False)
    assert reference["features"].shape == (8, 2048) and reference["logits"].shape == (8, 1008)
    assert report.neighbours.shape == (2 * 4, 1, 28, 28)
    assert offline_hub == []  # loaded from the path: no download attempted


def test_missing_weights_without_network_fail_fast_and_say_what_to_do(tmp_path, mnist, offline_hub):
    model = RealDigits(mnist.val_set.images, mnist.val_set.labels)
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        callbacks=[Evaluation(extractor="inception", settings={"cache_dir": str(tmp_path / "cache")})])
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as error:
        trainer.validate(model, datamodule=mnist)  # fails in setup, before any evaluation
    message = str(error.value)
    assert time.perf_counter() - start < 10 and offline_hub == [extractors.INCEPTION_URL]
    hub = tmp_path / "hub" / "checkpoints"
    for needed in ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth", str(hub),
                   "feature_extractor_weights_path", "'classifier'", "name resolution"):
        assert needed in message, needed

    with pytest.raises(FileNotFoundError, match="nowhere.pth does not exist"):
        extractors.InceptionExtractor(str(tmp_path / "nowhere.pth"))


def test_weights_already_in_the_hub_cache_are_used_under_either_name(tmp_path, offline_hub):
    hub = tmp_path / "hub" / "checkpoints"
    assert extractors.inception_weights() is None  # nothing there: torch-fidelity would download
    hub.mkdir(parents=True)
    (hub / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"pytorch-fid's copy")
    assert extractors.inception_weights() == str(hub / "pt_inception-2015-12-05-6726825d.pth")
    (hub / extractors.INCEPTION_FILE).write_bytes(b"torch-fidelity's copy")
    assert extractors.inception_weights() == str(hub / extractors.INCEPTION_FILE)
