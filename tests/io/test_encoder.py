"""plan_encoder: encoder from the extension, options from IOConfig, odd sizes kept or padded."""

from __future__ import annotations

from pathlib import Path

import pytest

from panini_video.config import IOConfig
from panini_video.errors import OutputError
from panini_video.io import plan_encoder


@pytest.mark.parametrize(
    ("name", "codec", "audio"),
    [
        ("a.mp4", "libx264", "aac"),
        ("a.MOV", "libx264", "aac"),
        ("a.mkv", "libx264", "aac"),
        ("a.webm", "libvpx-vp9", "libopus"),
    ],
)
def test_codec_from_extension(name: str, codec: str, audio: str) -> None:
    plan = plan_encoder(Path(name), IOConfig(), (64, 48))
    assert (plan.codec, plan.audio_codec, plan.pix_fmt) == (codec, audio, "yuv420p")
    assert not plan.padded


def test_config_overrides() -> None:
    plan = plan_encoder(Path("a.mp4"), IOConfig(codec="libx264", crf=18, preset="slow", pix_fmt="yuv444p"), (64, 48))
    assert plan.options == {"crf": "18", "preset": "slow"}
    assert plan.pix_fmt == "yuv444p"


def test_vp9_uses_constant_quality() -> None:
    plan = plan_encoder(Path("a.webm"), IOConfig(crf=40), (64, 48))
    assert plan.options["crf"] == "40" and plan.options["b"] == "0"


@pytest.mark.parametrize(
    ("size", "pix_fmt"), [((853, 479), "yuv444p"), ((853, 480), "yuv444p"), ((854, 479), "yuv444p")]
)
def test_odd_size_switches_to_444(size: tuple[int, int], pix_fmt: str) -> None:
    plan = plan_encoder(Path("a.mp4"), IOConfig(), size)
    assert (plan.pix_fmt, plan.coded_size) == (pix_fmt, size)


def test_odd_size_with_explicit_420_pads() -> None:
    plan = plan_encoder(Path("a.mp4"), IOConfig(pix_fmt="yuv420p"), (853, 479))
    assert (plan.pix_fmt, plan.size, plan.coded_size) == ("yuv420p", (853, 479), (854, 480))


def test_odd_width_with_422_pads_width_only() -> None:
    plan = plan_encoder(Path("a.mp4"), IOConfig(pix_fmt="yuv422p"), (853, 479))
    assert plan.coded_size == (854, 479)


def test_odd_size_in_webm_is_native() -> None:
    plan = plan_encoder(Path("a.webm"), IOConfig(), (853, 479))
    assert (plan.pix_fmt, plan.coded_size) == ("yuv420p", (853, 479))


@pytest.mark.parametrize(
    ("name", "config", "words"),
    [
        ("a.avi2", IOConfig(), "unknown output extension"),
        ("a", IOConfig(), "unknown output extension"),
        ("a.mp4", IOConfig(codec="no-such-encoder"), "no encoder"),
        ("a.mp4", IOConfig(pix_fmt="no-such-format"), "unknown pixel format"),
    ],
)
def test_refusals(name: str, config: IOConfig, words: str) -> None:
    with pytest.raises(OutputError, match=words):
        plan_encoder(Path(name), config, (64, 48))
