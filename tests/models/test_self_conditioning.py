"""Self-conditioning on k-means clusters (`clusters`): G draws its cluster from z in the data's
proportions, training tells D each real image's cluster, and the model stays unconditional outside."""

import lightning as L
import pytest
import torch
from torch import nn

from lit_gan.data import EmbeddedMNIST
from lit_gan.models import DCGAN
from lit_gan.self_conditioning import ClusterConditioned, nearest, pixel_features
from tests.conftest import tiny


class Echo(nn.Module):
    """A 'generator' that returns what it is given: z's first coordinate and the cluster."""

    def forward(self, z, clusters=None):
        return torch.stack([z[:, 0], clusters.float()], 1)


@pytest.mark.parametrize("noise", ["normal", "uniform"])
def test_clusters_come_from_z_in_the_data_proportions_and_training_keeps_z_distributed_alike(noise):
    wrapper = ClusterConditioned(Echo(), 3, noise)
    wrapper.proportions.copy_(torch.tensor([0.6, 0.3, 0.1]))
    n = 40_000
    z = torch.randn(n, 4) if noise == "normal" else torch.rand(n, 4) * 2 - 1
    z0, drawn = wrapper(z).T
    assert torch.equal(z0, z[:, 0])  # z goes in as it is
    fractions = torch.bincount(drawn.long(), minlength=3) / n
    assert torch.allclose(fractions, torch.tensor([0.6, 0.3, 0.1]), atol=0.01), fractions
    assert torch.equal(wrapper(z), wrapper(z))  # the same z, the same cluster and image

    told = torch.multinomial(wrapper.proportions, n, replacement=True)
    placed, kept = wrapper(z, told).T
    assert torch.equal(kept.long(), told)
    assert torch.equal(wrapper(torch.cat([placed[:, None], z[:, 1:]], 1))[:, 1].long(), told)  # z0 now draws the told cluster
    reference = z[:, 0]  # (z0, cluster) told in the data's proportions is distributed as when drawn from z alone
    assert abs(placed.mean() - reference.mean()) < 0.03 and abs(placed.std() - reference.std()) < 0.03
    for c in range(3):
        assert abs(placed[told == c].mean() - z0[drawn == c].mean()) < 0.05


def test_pixel_features_pool_by_a_whole_factor_to_at_most_8_pixels_a_side():
    assert pixel_features(torch.zeros(2, 1, 28, 28)).shape == (2, 49)
    assert pixel_features(torch.zeros(2, 3, 64, 64)).shape == (2, 3 * 64)
    assert pixel_features(torch.zeros(2, 3, 8, 8)).shape == (2, 3 * 64)
    images = torch.zeros(3, 1, 28, 28)
    images[1, :, :14] = 1  # top half
    images[2, :, 14:] = 1
    centroids = pixel_features(images[[2, 0, 1]])
    assert nearest(pixel_features(images), centroids).tolist() == [1, 2, 0]


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = tiny(DCGAN, num_classes=10, latent={"clusters": 4}, ema={"decay": 0.9})
    trainer = L.Trainer(max_steps=6, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    data = EmbeddedMNIST(batch_size=16)
    trainer.fit(model, data)
    return model, data


def test_fit_clusters_the_training_images_and_keeps_the_model_unconditional(trained):
    model, data = trained
    centroids, proportions = model.cluster_centroids, model.generator.proportions
    assert centroids.shape == (4, 49) and centroids.abs().sum(1).gt(0).all() and len(centroids.unique(dim=0)) == 4
    assert proportions.min() > 0 and torch.isclose(proportions.sum(), torch.tensor(1.0))
    assert torch.equal(model.generator_ema.proportions, proportions)
    assert not model.conditional
    images, labels = next(iter(data.train_dataloader()))
    real = data.to_value_range(images)
    told = model._labels(real, labels)  # D and G are told clusters, not the data's labels
    assert torch.equal(told, nearest(pixel_features(real), centroids))
    model.eval()
    assert model.generate(5).shape == (5, 1, 28, 28)
    grid, columns = model.fixed_samples()
    assert columns == 4 and grid.shape == (8 * 4, 1, 28, 28)  # one column per cluster, one noise per row
    assert model.grid_labels.view(8, 4).eq(torch.arange(4)).all()


def test_a_checkpoint_brings_its_clusters_and_training_does_not_find_new_ones(trained):
    model, _ = trained
    fresh = tiny(DCGAN, num_classes=10, latent={"clusters": 4}, ema={"decay": 0.9})
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.cluster_centroids, model.cluster_centroids)
    assert torch.equal(fresh.generator.proportions, model.generator.proportions)
    fresh._find_clusters()  # no trainer needed: nothing to find
    assert torch.equal(fresh.cluster_centroids, model.cluster_centroids)


@pytest.mark.parametrize("kwargs, message", [
    ({"latent": {"clusters": 1}}, "latent clusters must be an integer >= 2"),
    ({"latent": {"clusters": 3}, "conditional": True}, "conditional"),
])
def test_bad_cluster_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(DCGAN, num_classes=10, **kwargs)


def test_exports_draw_the_cluster_from_z_like_generate(trained, tmp_path):
    import onnxruntime

    from lit_gan import export

    model, _ = trained
    model.eval()
    module = export.wrapped(model)
    compiled = export.graph(module, model, "DCGANGenerator")
    export._onnx(compiled, model, tmp_path / "g.onnx", "DCGANGenerator")
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    z = model.sample_z(7)
    with torch.no_grad():
        expected = model.generate(z=z)
        assert torch.allclose(compiled(z), expected, atol=1e-6)
    assert torch.allclose(torch.from_numpy(session.run(None, {"z": z.numpy()})[0]), expected, atol=1e-5)


def test_clusters_train_in_double_precision_too():
    """64-true turns the buffers into float64: the clusters are found and used in the buffers' dtype."""
    model = tiny(DCGAN, num_classes=10, latent={"clusters": 3})
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", precision="64-true")
    trainer.fit(model, EmbeddedMNIST(batch_size=16))
    assert model.cluster_centroids.dtype == torch.float64 and model.cluster_centroids.abs().sum(1).gt(0).all()
