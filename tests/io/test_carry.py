"""Everything else in the container carried: every audio and subtitle stream, chapters, metadata, timecode."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import av
import pytest

from panini_video.config import IOConfig
from panini_video.io import VideoReader, VideoWriter

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(not (FFMPEG and FFPROBE), reason="Debian's ffmpeg/ffprobe are needed to make the clip")
FAST = IOConfig(preset="ultrafast")
SRT = "1\n00:00:00,100 --> 00:00:00,500\nHello <i>there</i>\n\n2\n00:00:00,600 --> 00:00:00,900\nSecond line\n\n"
META = (
    ";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\ntitle=Opening\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=500\nEND=1000\ntitle=Close\n"
)


@pytest.fixture(scope="module")
def rich_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s, 64x48: H.264, two audio streams (eng, fra), a subrip stream, two chapters, a title, a timecode."""
    d = tmp_path_factory.mktemp("carry")
    (d / "s.srt").write_text(SRT)
    (d / "meta.txt").write_text(META)
    out = d / "rich.mkv"
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
           "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000:duration=1",
           "-i", str(d / "s.srt"), "-i", str(d / "meta.txt"),
           "-map", "0", "-map", "1", "-map", "2", "-map", "3", "-map_chapters", "4",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-c:s", "srt",
           "-metadata", "title=Grandma's wedding", "-timecode", "01:02:03:04",
           "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
           "-metadata:s:s:0", "language=deu", "-metadata:s:v:0", "language=eng", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=60)
    return out


def _probe(path: Path) -> dict:
    cmd = [FFPROBE, "-v", "error", "-show_streams", "-show_chapters", "-show_format", "-of", "json", str(path)]
    return json.loads(subprocess.run(cmd, check=True, timeout=30, capture_output=True, text=True).stdout)


def _copy(src: Path, dst: Path, config: IOConfig = FAST) -> None:
    with VideoReader(src) as reader, VideoWriter(dst, reader.info, config) as writer:
        for frame in reader:
            writer.write(frame)


def _srt(path: Path) -> str:
    cmd = [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:s", "-f", "srt", "-"]
    return subprocess.run(cmd, check=True, timeout=30, capture_output=True, text=True).stdout


def _tags(d: dict) -> dict[str, str]:
    return {k.lower(): v for k, v in d.get("tags", {}).items()}


@pytest.mark.parametrize(("ext", "subtitle"), [(".mkv", "subrip"), (".mp4", "mov_text"), (".mov", "mov_text")])
def test_audio_subtitles_chapters_metadata_and_timecode_carried(
    rich_clip: Path, tmp_path: Path, ext: str, subtitle: str, caplog: pytest.LogCaptureFixture
) -> None:
    dst = tmp_path / f"out{ext}"
    with caplog.at_level(logging.WARNING):
        _copy(rich_clip, dst)
    assert "not carried" not in caplog.text
    info = _probe(dst)
    kinds = [(s["codec_type"], s["codec_name"]) for s in info["streams"] if s["codec_type"] != "data"]
    assert kinds == [("video", "h264"), ("audio", "aac"), ("audio", "aac"), ("subtitle", subtitle)]
    langs = [_tags(s).get("language") for s in info["streams"] if s["codec_type"] in ("audio", "subtitle")]
    # FFmpeg's mov muxer writes no language for a text track (its own command line loses it too)
    assert langs == ["eng", "fra", None if ext == ".mov" else "deu"]
    assert [_tags(c)["title"] for c in info["chapters"]] == ["Opening", "Close"]
    assert abs(float(info["chapters"][1]["start_time"]) - 0.5) < 0.01
    assert _tags(info["format"])["title"] == "Grandma's wedding"
    timecodes = {_tags(s).get("timecode") for s in info["streams"]} | {_tags(info["format"]).get("timecode")}
    assert "01:02:03:04" in timecodes
    if ext in (".mp4", ".mov"):  # the timecode is a tmcd track, as editors read it
        assert any(s.get("codec_tag_string") == "tmcd" for s in info["streams"])
    # the subtitles' text and times, italics kept, read back through FFmpeg's srt muxer
    srt = _srt(dst)
    assert srt == _srt(rich_clip) and "Hello <i>there</i>" in srt and "Second line" in srt
    with av.open(str(dst)) as c:  # the second audio stream is whole, not just present
        second = c.streams.audio[1]
        samples = sum(f.samples for f in c.decode(second))
    assert abs(samples / 48000 - 1.0) < 0.05


def test_what_cannot_be_carried_is_named_in_one_warning(
    rich_clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dst = tmp_path / "out.mxf"  # MXF holds neither subtitles nor chapters
    with caplog.at_level(logging.WARNING), VideoReader(rich_clip) as reader:
        writer = VideoWriter(dst, reader.info, IOConfig(codec="mpeg2video"))
        writer.abort()  # named when the writer is made, before any frame
    warned = [r.getMessage() for r in caplog.records if "not carried" in r.getMessage()]
    assert len(warned) == 1
    assert "subtitle stream 3 (subrip): mxf holds no subtitles" in warned[0] and "2 chapters" in warned[0]
    assert not dst.exists()


def test_subrip_into_webm_becomes_webvtt(rich_clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dst = tmp_path / "out.webm"
    with caplog.at_level(logging.WARNING):
        _copy(rich_clip, dst)
    assert "not carried" not in caplog.text
    info = _probe(dst)
    kinds = [(s["codec_type"], s["codec_name"]) for s in info["streams"]]
    assert kinds == [("video", "vp9"), ("audio", "opus"), ("audio", "opus"), ("subtitle", "webvtt")]
    assert len(info["chapters"]) == 2 and "Second line" in _srt(dst)
