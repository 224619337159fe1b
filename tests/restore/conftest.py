"""Fixtures of the restore tests: real frames with tracked faces, and a seeded tiny Panini-Net."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from panini_video.models import VARIANTS, PaniniNet, load_model, save_model
from panini_video.records import FrameItem
from tests.restore.helpers import detect_and_track

CLIP = "videos/lowq_real_388x512_noaudio.mp4"  # one real face, about 250 px tall
CLIP_FRAMES = 12


@pytest.fixture(scope="session")
def clip_items(testdata: Path) -> list[FrameItem]:
    """12 frames of a real low-quality interview, each with its tracked face."""
    items = detect_and_track(testdata / CLIP, CLIP_FRAMES)
    assert len(items) == CLIP_FRAMES and all(len(it.faces) == 1 for it in items)
    return items


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Panini-Net with seeded random weights, saved as a weight file."""
    torch.manual_seed(1234)
    model = PaniniNet(VARIANTS["tiny"]).eval()
    return save_model(model, tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture
def tiny_model(tiny_model_file: Path) -> PaniniNet:
    return load_model(tiny_model_file)
