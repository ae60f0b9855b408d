import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from a second intra-op thread; on a busy 2-core machine it makes
    every op wait for a core (the engine-trained fixtures run ~10× faster on one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
