"""plan_encoder: encoder from the extension, options from IOConfig, odd sizes kept or padded."""

from __future__ import annotations

from pathlib import Path

import pytest

from panini_video.config import IOConfig
from panini_video.errors import OutputError, UsageError
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
    ],
)
def test_refusals(name: str, config: IOConfig, words: str) -> None:
    with pytest.raises(OutputError, match=words):
        plan_encoder(Path(name), config, (64, 48))


@pytest.mark.parametrize(
    ("name", "config", "words"),
    [
        ("a.mp4", IOConfig(codec="no-such-encoder"), "no encoder"),
        ("a.mp4", IOConfig(codec="aac"), "audio encoder"),
        ("a.mp4", IOConfig(pix_fmt="no-such-format"), "unknown pixel format"),
        ("a.mp4", IOConfig(pix_fmt="rgb24"), "libx264 does not take it"),
        ("a.mp4", IOConfig(pix_fmt="pal8"), "libx264 does not take it"),
        ("a.mp4", IOConfig(crf=-5), "from 0 to 51"),
        ("a.mp4", IOConfig(crf=52), "from 0 to 51"),
        ("a.webm", IOConfig(crf=64), "from 0 to 63"),
        ("a.mp4", IOConfig(preset="banana"), "ultrafast"),
        ("a.webm", IOConfig(preset="banana"), "realtime"),
        ("a.mkv", IOConfig(codec="libx265", preset="banana"), "ultrafast"),
    ],
)
def test_encoder_choices_are_usage_errors(name: str, config: IOConfig, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        plan_encoder(Path(name), config, (64, 48))


def test_the_encoder_is_opened_with_the_plan() -> None:
    """What only the encoder knows is refused at planning: x264 cannot code 4:2:0 at 2 px wide."""
    plan_encoder(Path("a.mp4"), IOConfig(codec="libx264", crf=0, preset="placebo"), (64, 48))
    with pytest.raises(UsageError, match="refuses"):
        plan_encoder(Path("a.mp4"), IOConfig(codec="mpeg4"), (70000, 70000))


def test_a_codec_without_yuv420p_gets_one_it_takes() -> None:
    plan = plan_encoder(Path("a.mov"), IOConfig(codec="prores_ks"), (64, 48))
    assert plan.pix_fmt == "yuv422p10le"


def test_x264_preset_names_are_ignored_by_vp9_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    plan = plan_encoder(Path("a.webm"), IOConfig(preset="ultrafast"), (64, 48))
    assert "deadline" not in plan.options and "ignores it" in caplog.text


@pytest.mark.parametrize(
    ("source", "name", "config", "expected"),
    [
        ("yuv422p10le", "a.mp4", IOConfig(), "yuv422p10le"),  # x264 High 4:2:2
        ("yuv444p10le", "a.mkv", IOConfig(codec="x265"), "yuv444p10le"),
        ("gbrp10le", "a.mkv", IOConfig(codec="ffv1"), "gbrp10le"),  # RGB stays RGB
        ("nv12", "a.mp4", IOConfig(), "yuv420p"),  # the planar twin: the same samples
        ("gbrp", "a.mp4", IOConfig(), "yuv444p"),  # x264 has no planar RGB: full chroma, logged
        ("yuv422p10le", "a.webm", IOConfig(pix_fmt="yuv422p"), "yuv422p"),  # fewer bits when asked for
        ("yuv444p10le", "a.mov", IOConfig(codec="prores"), "yuv444p10le"),  # the 4444 profile, from the input
    ],
)
def test_the_output_keeps_the_input_format(source: str, name: str, config: IOConfig, expected: str) -> None:
    assert plan_encoder(Path(name), config, (320, 240), source).pix_fmt == expected


@pytest.mark.parametrize(("source", "name"), [("yuv422p10le", "a.webm"), ("yuv420p12le", "a.mp4")])
def test_a_depth_the_encoder_cannot_keep_is_refused_before_any_work(source: str, name: str) -> None:
    with pytest.raises(UsageError, match=r"-bit .* --pix-fmt \w+ to accept"):
        plan_encoder(Path(name), IOConfig(), (320, 240), source)
