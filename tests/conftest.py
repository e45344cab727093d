import pytest
import torch

# Random test weights drive GELU gates deep negative; denormal floats make CPU maths 100x slower.
torch.set_flush_denormal(True)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
