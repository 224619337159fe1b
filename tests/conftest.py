"""Shared fixtures: the real media of ``../shared/testdata`` and a scratch cache directory."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTDATA = Path(os.environ.get("PANINI_TESTDATA", Path(__file__).resolve().parents[1].parent / "shared" / "testdata"))


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The shared test data folder; tests that use it skip, with the reason, when it is absent."""
    if not (TESTDATA / "MANIFEST.md").is_file():
        pytest.skip(f"shared test data not found at {TESTDATA} (set PANINI_TESTDATA)")
    return TESTDATA


@pytest.fixture(autouse=True)
def _cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets an empty cache directory, never the user's; deleted after the test, since
    a fetched full-size model is hundreds of MB (a failed test's tmp_path is still kept)."""
    home = tmp_path_factory.mktemp("panini_home")
    monkeypatch.setenv("PANINI_VIDEO_HOME", str(home))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for a module: detector tests on machines of few, shared cores crawl
    when their threads outnumber the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
