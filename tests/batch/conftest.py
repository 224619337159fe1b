"""Shared material of the batch tests: tiny weights, short real clips, a folder of good and bad files.

The clips are the first frames of real test videos (``../shared/testdata``), re-encoded once per
session, so each file takes well under a second through the whole pipeline on a CPU.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import pytest
import torch

from panini_video.models import VARIANTS, PaniniNet, save_model

GOOD = {  # name in the folder -> (source clip, frames kept)
    "a.mp4": ("videos/lowq_real_388x512_noaudio.mp4", 10),
    "sub/b.mp4": ("videos/talking_vfr_700.mp4", 10),
}


def cut(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``src`` as a new H.264 file (real pixels, a short file)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as c, av.open(str(dst), "w") as o:
        vs = c.streams.video[0]
        s = o.add_stream("libx264", rate=vs.average_rate or 25)
        s.width, s.height, s.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
        s.options = {"preset": "ultrafast"}
        for i, frame in enumerate(c.decode(vs)):
            if i == frames:
                break
            o.mux(s.encode(frame.reformat(format="yuv420p")))
        o.mux(s.encode())
    return dst


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("batch_weights") / "tiny.safetensors"
    return save_model(PaniniNet(VARIANTS["tiny"]).eval(), path, random_seed=7)


@pytest.fixture(scope="session")
def clips(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("batch_clips")
    made = {name: cut(testdata / src, root / name, n) for name, (src, n) in GOOD.items()}
    made["long.mp4"] = cut(testdata / "videos/lowq_real_388x512_noaudio.mp4", root / "long.mp4", 40)
    return made


@pytest.fixture
def mixed_folder(tmp_path: Path, clips: dict[str, Path], testdata: Path) -> Path:
    """Two good clips (one in a subfolder), a truncated mp4, a text file named .mp4 and notes.txt."""
    folder = tmp_path / "in"
    for name in GOOD:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clips[name], folder / name)
    (folder / "corrupt.mp4").write_bytes((testdata / "videos/talking_vfr_700.mp4").read_bytes()[:30000])
    (folder / "fake.mp4").write_text("not a video at all\n")
    (folder / "notes.txt").write_text("tape 12, side B\n")
    return folder


@pytest.fixture
def run_args(tiny_weights: Path) -> list[str]:
    """The options every test batch runs with: tiny weights, the shipped detector, a fast encoder."""
    return ["--model", str(tiny_weights), "--detector", "mobilenet", "--device", "cpu", "--preset", "ultrafast", "-q"]
