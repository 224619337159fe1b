"""Lossless and mezzanine outputs: FFV1, ProRes, DNxHR and x264 at crf 0, and the combinations refused."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from panini_video.cli import main
from panini_video.config import IOConfig
from panini_video.errors import OutputError
from panini_video.io import VideoWriter, probe
from panini_video.records import Frame

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(not FFMPEG, reason="Debian's ffmpeg is needed to make the clip")
SIZE = (256, 128)  # DNxHR's smallest is 256x120


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mezz") / "src.mp4"
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
           "-i", f"testsrc2=size={SIZE[0]}x{SIZE[1]}:rate=25:duration=0.2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=60)
    return out


def _frames(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8) for _ in range(n)]


def _write(src: Path, dst: Path, config: IOConfig, images: list[np.ndarray]) -> VideoWriter:
    info = probe(src)
    with VideoWriter(dst, info, config, audio_from=None) as w:
        for i, im in enumerate(images):
            w.write(Frame(i, i * 512, info.time_base, im))
    return w


@pytest.mark.parametrize(
    ("name", "config", "codec", "profile", "pix_fmt"),
    [
        ("a.mkv", IOConfig(codec="ffv1"), "ffv1", None, "yuv420p"),
        ("a.mov", IOConfig(codec="prores"), "prores", "HQ", "yuv422p10le"),
        ("a.mov", IOConfig(codec="prores", profile="4444"), "prores", "4444", "yuv444p12le"),  # decoded at 12 bits
        ("a.mkv", IOConfig(codec="prores", profile="proxy"), "prores", "Proxy", "yuv422p10le"),
        ("a.mov", IOConfig(codec="dnxhr"), "dnxhd", "DNXHR HQ", "yuv422p"),
        ("a.mov", IOConfig(codec="dnxhr", profile="hqx"), "dnxhd", "DNXHR HQX", "yuv422p10le"),
        ("a.mp4", IOConfig(codec="x264", crf=0, preset="ultrafast"), "h264", "High 4:4:4 Predictive", "yuv420p"),
    ],
)
def test_each_codec_writes_what_it_says(
    source: Path, tmp_path: Path, name: str, config: IOConfig, codec: str, profile: str | None, pix_fmt: str
) -> None:
    dst = tmp_path / name
    _write(source, dst, config, _frames(2))
    with av.open(str(dst)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.name, v.codec_context.pix_fmt) == (codec, pix_fmt)
        if profile:
            assert v.codec_context.profile == profile
        assert len(list(c.decode(v))) == 2


@pytest.mark.parametrize(("name", "config"), [("a.mkv", IOConfig(codec="ffv1")), ("a.mp4", IOConfig(crf=0))])
def test_lossless_outputs_round_trip_the_converted_frame(
    source: Path, tmp_path: Path, name: str, config: IOConfig
) -> None:
    images = _frames(3)
    dst = tmp_path / name
    w = _write(source, dst, config, images)
    with av.open(str(dst)) as c:
        decoded = [f for f in c.decode(c.streams.video[0])]
    assert len(decoded) == 3
    for image, got in zip(images, decoded, strict=True):
        # the same RGB -> YUV conversion the writer does (an untagged source: swscale's defaults)
        want = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=w.plan.pix_fmt)
        assert np.array_equal(got.to_ndarray(), want.to_ndarray())


@pytest.mark.parametrize(
    ("out", "flags", "words"),
    [
        ("out.mp4", ["--codec", "prores"], "name the output .mov or .mkv"),
        ("out.webm", ["--codec", "dnxhr"], "name the output .mov or .mxf"),
        ("out.mp4", ["--codec", "ffv1"], "name the output .mkv"),
        ("out.mov", ["--codec", "prores", "--profile", "banana"], "proxy, lt, standard, hq, 4444, 4444xq"),
        ("out.mov", ["--codec", "prores", "--pix-fmt", "yuv420p"], "codes yuv422p10le"),
        ("out.mp4", ["--pix-fmt", "yuv422p12le"], "12-bit"),
        ("out.mp4", ["--profile", "hq"], "only prores and dnxhr"),
    ],
)
def test_unsupported_combinations_exit_2_before_any_file(
    source: Path, tmp_path: Path, out: str, flags: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dst = tmp_path / out
    try:
        code = main([str(source), str(dst), "-q", *flags])
    except SystemExit as e:
        code = int(e.code or 0)
    err = capsys.readouterr().err
    assert code == 2, err
    assert words in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("rate", "time_base", "step", "mxf_rate"),
    [
        (Fraction(25), Fraction(1, 12800), 512, Fraction(25)),  # the clip's own 25 fps
        (Fraction(2997, 100), Fraction(1, 11988), 400, Fraction(30000, 1001)),  # 29.97 written as NTSC's rate
    ],
)
def test_dnxhr_into_mxf_decodes_back_at_one_frame_per_edit_unit(
    source: Path, tmp_path: Path, rate: Fraction, time_base: Fraction, step: int, mxf_rate: Fraction
) -> None:
    """MXF takes only 1/fps as the time base: the input's pts are rescaled to it, frames one per tick."""
    info = dataclasses.replace(probe(source), frame_rate=rate, base_rate=rate, time_base=time_base)
    dst = tmp_path / "a.mxf"
    images = _frames(4)
    with VideoWriter(dst, info, IOConfig(codec="dnxhr"), audio_from=None) as w:
        for i, im in enumerate(images):
            w.write(Frame(i, 3 * step + i * step, time_base, im))  # starting three frames in, as a cut would
    with av.open(str(dst)) as c:
        v = c.streams.video[0]
        assert (c.format.name, v.codec_context.name, v.time_base) == ("mxf", "dnxhd", 1 / mxf_rate)
        pts = [f.pts for f in c.decode(v)]
    assert len(pts) == 4 and pts == list(range(pts[0], pts[0] + 4))


def test_a_rate_mxf_cannot_hold_is_refused_naming_mov(source: Path, tmp_path: Path) -> None:
    info = dataclasses.replace(probe(source), frame_rate=Fraction(1350, 61))  # 22.13 fps (a variable-rate clip)
    with pytest.raises(OutputError, match=r"MXF holds the frame rates .*22\.131 fps: write \.mov"):
        VideoWriter(tmp_path / "a.mxf", info, IOConfig(codec="dnxhr"), audio_from=None)
    assert list(tmp_path.iterdir()) == []


def _mono_48k(path: Path) -> tuple[np.ndarray, float]:
    """The file's first audio stream decoded as 48 kHz mono float samples, and the time of the first."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
    chunks, start = [], None
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            start = float(frame.time or 0.0) if start is None else start
            chunks += [f.to_ndarray()[0] for f in resampler.resample(frame)]
    return np.concatenate(chunks), start or 0.0


def test_mxf_audio_starts_with_the_first_frame_so_it_stays_in_sync(testdata: Path, tmp_path: Path) -> None:
    """MXF shows its first frame at 0: the audio before that frame's time is cut, the rest keeps its place.

    hamilton_short's first video frame is at 0.852 s and its audio starts at 0: written to MXF
    as it is, the audio would lead the picture by 0.852 s.
    """
    from panini_video.io import VideoReader
    from panini_video.verify import verify_files

    src = testdata / "videos" / "hamilton_short.mp4"
    out = tmp_path / "h.mxf"
    with VideoReader(src) as reader, VideoWriter(out, reader.info, IOConfig(codec="dnxhr")) as writer:
        first = None
        for frame in reader:
            first = frame.time if first is None else first
            writer.write(frame)
    assert first is not None and first > 0.5
    (a, a0), (b, b0) = _mono_48k(src), _mono_48k(out)
    window = b[48000 : 3 * 48000]  # the output's 1 s to 3 s
    lags = range(0, 3 * 48000, 12)
    best = max(lags, key=lambda lag: float(np.dot(a[lag : lag + len(window)], window)))
    found = a0 + best / 48000  # the input time the output's (b0 + 1 s) sounds like
    # in sync: the input's time is the output's plus the first frame's (lip sync holds within 20 ms)
    assert abs(found - (b0 + 1.0 + first)) < 0.02, (found, b0 + 1.0 + first)
    report = verify_files(src, out)
    assert [c.status for c in report.audio] == ["ok"]
