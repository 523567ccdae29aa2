"""Suite-wide settings: every test works on tiny tensors, where one torch thread is fastest on 2 shared cores
(about 10x faster than oversubscribed threads under load)."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
