"""The CUDA tests: marked ``cuda``, skipped with the reason where this torch sees no GPU.

Every test in this folder that needs a GPU carries the ``cuda`` marker (the whole module through
``pytestmark``, or one parameter through ``DEVICES``); here such tests are skipped when
``torch.cuda.is_available()`` is false, so CI runs the CPU parameters and skips the rest.
``panini-video bench gpu`` runs ``pytest -m cuda tests/cuda`` on the GPU machine. The habit of
one marker that a conftest turns into a skip follows torchcodec's ``needs_cuda``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from panini_video.models import VARIANTS, PaniniNet, save_model

HERE = Path(__file__).resolve().parent
NO_CUDA = "needs a CUDA GPU: torch.cuda.is_available() is false on this machine"

# The devices a test runs on: the CPU always, CUDA where present (marked, so `-m cuda` finds it).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=NO_CUDA)
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents and item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_net() -> PaniniNet:
    """A tiny Panini-Net with seeded random weights, on the CPU (each test moves its own copy)."""
    torch.manual_seed(4321)
    return PaniniNet(VARIANTS["tiny"]).eval()


@pytest.fixture(scope="session")
def tiny_file(tmp_path_factory: pytest.TempPathFactory, tiny_net: PaniniNet) -> Path:
    """The same tiny network as a weights file, for the CLI."""
    return save_model(tiny_net, tmp_path_factory.mktemp("weights") / "tiny.safetensors", random_seed=4321)
