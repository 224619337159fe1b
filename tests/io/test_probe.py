"""probe: facts of real and generated clips, and a typed, clear error for every bad input."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from panini_video.errors import CorruptInputError, InputError, InputNotFoundError, NoVideoStreamError
from panini_video.io import VideoInfo, probe


def test_probe_real_clip_matches_manifest(testdata: Path) -> None:
    # facts from testdata/MANIFEST.md (measured there with ffprobe)
    info = probe(testdata / "videos" / "hamilton_short.mp4")
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height) == (640, 360)
    assert info.frame_rate == Fraction(2997, 100)
    assert info.time_base == Fraction(1, 11988)
    assert info.frame_count == 275
    assert info.rotation == 0
    assert info.start_time == pytest.approx(0.852, abs=1e-3)
    assert info.duration == pytest.approx(9.176, abs=1e-3)
    assert info.codec == "h264"
    assert "mp4" in info.format
    (audio,) = info.audio_streams
    assert (audio.codec, audio.extra["sample_rate"], audio.extra["channels"]) == ("aac", 44100, 2)
    assert [s.kind for s in info.streams] == ["video", "audio"]


def test_probe_vfr_reports_average_and_base_rate(testdata: Path) -> None:
    info = probe(testdata / "videos" / "talking_vfr_700.mp4")
    assert info.frame_rate == Fraction(1350, 61)  # avg_frame_rate
    assert info.base_rate == Fraction(30)  # r_frame_rate
    assert info.frame_count == 135


def test_probe_mpeg4_with_16k_audio(testdata: Path) -> None:
    info = probe(testdata / "videos" / "talking_hdtf_mpeg4_512.mp4")
    assert info.codec == "mpeg4"
    assert info.size == (512, 512)
    assert info.audio_streams[0].extra["sample_rate"] == 16000


def test_probe_no_audio(testdata: Path) -> None:
    info = probe(testdata / "videos" / "lowq_real_388x512_noaudio.mp4")
    assert info.audio_streams == ()
    assert info.size == (388, 512)


@pytest.mark.parametrize(("name", "degrees"), [("plain", 0), ("rot90", 90), ("rot270", 270)])
def test_probe_rotation_from_display_matrix(clips: dict[str, Path], name: str, degrees: int) -> None:
    assert probe(clips[name]).rotation == degrees


def test_probe_rotation_from_legacy_tag(clips: dict[str, Path]) -> None:
    # the old 'rotate' tag is clockwise; VideoInfo.rotation is counterclockwise like the matrix
    assert probe(clips["rotate_tag"]).rotation == 270


def test_probe_ntsc_rate_and_odd_size(clips: dict[str, Path]) -> None:
    assert probe(clips["ntsc"]).frame_rate == Fraction(30000, 1001)
    assert probe(clips["odd"]).size == (853, 479)


def test_probe_keeps_container_tags(clips: dict[str, Path]) -> None:
    tags = probe(clips["plain"]).metadata
    assert tags["title"] == "plain clip"
    assert tags["comment"] == "made by the io tests"


def _truncated(testdata: Path, tmp_path: Path) -> Path:
    data = (testdata / "videos" / "hamilton_short.mp4").read_bytes()
    out = tmp_path / "half.mp4"
    out.write_bytes(data[: len(data) // 2])
    return out


@pytest.mark.parametrize(
    ("case", "error", "words"),
    [
        ("missing", InputNotFoundError, "no such file"),
        ("empty", CorruptInputError, "empty"),
        ("text", CorruptInputError, "not a media file"),
        ("audio_only", NoVideoStreamError, "no video stream"),
        ("folder", InputError, "folder"),
    ],
)
def test_probe_bad_inputs_give_typed_errors(
    clips: dict[str, Path], tmp_path: Path, case: str, error: type[Exception], words: str
) -> None:
    path = {"missing": tmp_path / "nowhere.mp4", "folder": tmp_path}.get(case) or clips[case]
    with pytest.raises(error) as caught:
        probe(path)
    assert words in str(caught.value)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, InputError)


def test_probe_missing_is_also_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "nowhere.mp4")


def test_probe_first_half_of_real_file(testdata: Path, tmp_path: Path) -> None:
    # the index (moov) of this file is at its end, so the first half has none
    path = _truncated(testdata, tmp_path)
    with pytest.raises(CorruptInputError, match="truncated"):
        probe(path)


def test_probe_truncated_file_with_index_first(clips: dict[str, Path], tmp_path: Path) -> None:
    # a faststart file (index at the start) opens; its index points past the cut
    from panini_video.config import IOConfig
    from panini_video.io import VideoReader, VideoWriter

    whole = tmp_path / "whole.mp4"
    with VideoReader(clips["aac"]) as reader, VideoWriter(whole, reader.info, IOConfig(preset="ultrafast")) as w:
        for frame in reader:
            w.write(frame)
    data = whole.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptInputError, match="truncated") as caught:
        probe(cut)
    assert str(cut) in str(caught.value)


def test_a_text_file_is_not_taken_for_a_video(tmp_path: Path) -> None:
    # FFmpeg's "tty" demuxer would render any .txt file as frames of text.
    notes = tmp_path / "notes.txt"
    notes.write_text("what the interview is about\n" * 200)
    with pytest.raises(CorruptInputError, match="a text file, not a video"):
        probe(notes)
