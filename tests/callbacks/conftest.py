"""The metrics tests' fixtures (EmbeddedMNIST, a cache holding its trained classifier, one thread)."""

from tests.metrics.conftest import cache_dir, mnist, one_thread, trained_cache  # noqa: F401
