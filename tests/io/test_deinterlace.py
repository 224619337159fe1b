"""Interlaced and telecined input: idet's verdict, bwdif / bwdif-field / IVTC, and what the sink is told.

The clips are made from the real crowd clip with Debian's ffmpeg: a 25i clip (``interlace``
weaves two frames into the two fields of one, encoded interlaced by x264), a 23.976 progressive
clip, and that clip telecined to 29.97i (``telecine=pattern=23``, 3:2 pulldown).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from panini_video.errors import UsageError
from panini_video.io import VideoReader, VideoWriter, probe
from panini_video.io.deinterlace import detect, plan
from panini_video.records import Frame
from panini_video.run.sources import FileSource

X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-an"]
INTERLACED = ["-flags", "+ilme+ildct", "-top", "1"]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=60)


@pytest.fixture(scope="module")
def fields_clips(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("Debian's ffmpeg command line is not installed (apt-get install ffmpeg)")
    src = testdata / "videos" / "crowd_multiface_1080p.mp4"
    d = tmp_path_factory.mktemp("fields")
    i25, p24, tc = d / "i25.mp4", d / "p24.mp4", d / "telecined.mp4"
    # 4 s of 25p woven pairwise into 50 interlaced frames, retimed to 25i
    _ffmpeg("-i", str(src), "-t", "4", "-vf", "scale=320:180,interlace=scan=tff,setpts=N/(25*TB)", "-r", "25",
            *X264, *INTERLACED, str(i25))  # fmt: skip
    _ffmpeg("-i", str(src), "-vf", "scale=320:180,setpts=N/(24000/1001*TB)", "-r", "24000/1001", *X264, str(p24))
    _ffmpeg("-i", str(p24), "-vf", "telecine=pattern=23", *X264, *INTERLACED, str(tc))
    return {"i25": i25, "p24": p24, "telecined": tc}


def _combing(image: np.ndarray) -> float:
    """How far each line is from the mean of its neighbours: high where two fields are woven."""
    g = image.astype(np.float32).mean(axis=2)
    return float(np.abs(g[1:-1] - (g[:-2] + g[2:]) / 2).mean())


def _read(source: FileSource) -> list[Frame]:
    try:
        return list(source.frames(4))
    finally:
        source.close()


def test_idet_says_interlaced_for_25i_and_progressive_for_progressive(fields_clips: dict[str, Path]) -> None:
    i25 = detect(probe(fields_clips["i25"]))
    assert i25.interlaced and i25.field_order == "tff"
    assert i25.stream_field_order == "tt" and i25.tff > 0.9 * i25.frames and i25.frames >= 50
    p24 = detect(probe(fields_clips["p24"]))
    assert not p24.interlaced and p24.progressive > 0.9 * p24.frames
    assert p24.stream_field_order == "progressive" and p24.field_order is None
    tc = detect(probe(fields_clips["telecined"]))
    assert tc.telecine_suspected and not i25.telecine_suspected and not p24.telecine_suspected


def test_auto_deinterlaces_only_the_interlaced_clip(fields_clips: dict[str, Path]) -> None:
    auto_i = FileSource(fields_clips["i25"], deinterlace="auto")
    assert auto_i.field_plan.active and auto_i.field_plan.mode == "bwdif"
    auto_p = FileSource(fields_clips["p24"], deinterlace="auto")
    assert not auto_p.field_plan.active
    assert auto_p.info.frame_rate == probe(fields_clips["p24"]).frame_rate
    assert auto_p.info.frame_count == probe(fields_clips["p24"]).frame_count
    # flagged progressive: no decoding pass before the run; idet checks the flag on the frames read
    assert auto_p.stats()["deinterlace"]["reason"] == "auto: the stream is flagged progressive"
    frames = _read(auto_p)
    stats = auto_p.stats()["deinterlace"]
    assert stats["mode"] == "off" and stats["filter"] is None and stats["interlaced"] is False
    assert stats["stream_field_order"] == "progressive" and stats["idet"]["frames"] == min(60, len(frames))
    assert stats["idet"]["progressive"] > stats["idet"]["tff"] + stats["idet"]["bff"]


def test_off_leaves_frames_as_decoded(fields_clips: dict[str, Path]) -> None:
    path = fields_clips["i25"]
    source = FileSource(path, deinterlace="off")
    frames = _read(source)
    with VideoReader(path) as reader:
        plain = list(reader)
    assert [f.pts for f in frames] == [f.pts for f in plain]
    for a, b in zip(frames, plain, strict=True):
        assert a.image.format == b.image.format
        for pa, pb in zip(a.image.planes, b.image.planes, strict=True):
            np.testing.assert_array_equal(pa, pb)
    c = source.colour  # the info carries the resolved colour; the rest is the file's as probed
    assert source.info == dataclasses.replace(
        probe(path), color_space=c.matrix, color_range=c.range, color_primaries=c.primaries, color_trc=c.transfer
    )
    assert source.stats()["deinterlace"] == {
        "mode": "off",
        "filter": None,
        "field_order": None,
        "reason": "--deinterlace off",
        "frame_rate_in": "25",
        "frame_rate_out": "25",
    }


def test_bwdif_keeps_count_and_times_and_removes_combing(fields_clips: dict[str, Path]) -> None:
    path = fields_clips["i25"]
    plain = _read(FileSource(path, deinterlace="off"))
    source = FileSource(path, deinterlace="bwdif")
    frames = _read(source)
    assert len(frames) == len(plain) == probe(path).frame_count
    assert [f.time for f in frames] == [f.time for f in plain]
    assert [f.index for f in frames] == list(range(len(frames)))
    assert source.info.frame_rate == 25 and frames[0].time_base == source.info.time_base
    combed = np.mean([_combing(f.rgb()) for f in plain])
    clean = np.mean([_combing(f.rgb()) for f in frames])
    assert clean < 0.6 * combed, (clean, combed)
    stats = source.stats()["deinterlace"]
    assert stats["filter"] == "bwdif=mode=send_frame:parity=tff:deint=all"
    assert stats["frames_in"] == stats["frames_out"] == len(frames)
    assert stats["idet"]["tff"] > 0 and stats["stream_field_order"] == "tt"


def test_bwdif_field_doubles_rate_with_a_pts_per_field(fields_clips: dict[str, Path], tmp_path: Path) -> None:
    path = fields_clips["i25"]
    n = probe(path).frame_count
    assert n is not None
    source = FileSource(path, deinterlace="bwdif-field", field_order="tff")
    frames = _read(source)
    info = source.info
    assert len(frames) == 2 * n and info.frame_count == 2 * n
    assert info.frame_rate == 50 and info.time_base == probe(path).time_base / 2
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))
    # each field's frame half a source frame after the one before: evenly 1/50 s apart
    steps = {round((b.time - a.time) * 50, 6) for a, b in zip(frames, frames[1:], strict=False)}
    assert steps == {1.0}
    stats = source.stats()["deinterlace"]
    assert (stats["frames_in"], stats["frames_out"], stats["frame_rate_out"]) == (n, 2 * n, "50")
    # the sink, told source.info, writes a 50 fps file of every field
    out = tmp_path / "fields.mp4"
    with VideoWriter(out, info, audio_from=None) as writer:
        for f in frames:
            writer.write(f)
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        times = [float(fr.pts * fr.time_base) for fr in c.decode(s)]
        assert s.average_rate == 50
    assert len(times) == 2 * n and times == pytest.approx([f.time - frames[0].time for f in frames], abs=1e-3)


def test_ivtc_gives_the_film_frames_back(fields_clips: dict[str, Path], tmp_path: Path) -> None:
    path = fields_clips["telecined"]
    film = probe(fields_clips["p24"]).frame_count
    telecined = probe(path).frame_count
    assert film and telecined and telecined > film
    source = FileSource(path, deinterlace="auto", ivtc=True)
    frames = _read(source)
    assert source.info.frame_rate == Fraction(24000, 1001)
    assert abs(len(frames) - telecined * 4 / 5) <= 2 and abs(len(frames) - film) <= 2
    assert source.info.frame_count is not None and abs(source.info.frame_count - len(frames)) <= 2
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))
    assert frames[0].time_base == source.info.time_base
    steps = [b.time - a.time for a, b in zip(frames, frames[1:], strict=False)]
    assert max(steps) == pytest.approx(min(steps)) == pytest.approx(1001 / 24000)
    stats = source.stats()["deinterlace"]
    assert stats["mode"] == "ivtc" and "fieldmatch" in stats["filter"] and "decimate" in stats["filter"]
    assert (stats["frames_in"], stats["frames_out"]) == (telecined, len(frames))
    assert stats["frame_rate_in"] == "30000/1001" and stats["frame_rate_out"] == "24000/1001"
    # the film frames, not the telecined blends: as free of combing as the progressive original
    original = _read(FileSource(fields_clips["p24"]))
    assert np.mean([_combing(f.rgb()) for f in frames]) < 1.3 * np.mean([_combing(f.rgb()) for f in original])


def test_settings_refused_with_what_to_do() -> None:
    with pytest.raises(UsageError, match="give one of the two"):
        plan(None, "bwdif-field", "auto", True)
    with pytest.raises(UsageError, match="--deinterlace"):
        plan(None, "yadif", "auto", False)
    with pytest.raises(UsageError, match="--field-order"):
        plan(None, "bwdif", "top", False)
    assert plan(None, "bwdif", "bff", False).description == "bwdif=mode=send_frame:parity=bff:deint=all"
