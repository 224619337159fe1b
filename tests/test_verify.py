"""``panini-video verify`` on a real restoration to FFV1, and on outputs altered on purpose.

One real run (the tiny model with seeded random weights, the shipped detector) restores the
first second of a real talking-head clip with its AAC audio into FFV1 with ``--stats-json``.
Its copies are then altered with PyAV, each in one known way (one sample outside the faces,
one inside, frames cut off, a lossy or another-format re-encode, a frame moved in time), so
each check must find exactly what was done, and nothing where nothing was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from panini_video.cli import main
from panini_video.models import VARIANTS, PaniniNet, save_model
from panini_video.restore.planes import region_mask
from panini_video.verify import Verification, load_stats, verify_files

CLIP = "videos/talking_vfr_700.mp4"  # one face, AAC audio, variable frame timing, no B-frames
DETECTOR = "weights/retinaface_mobilenet0.25_Final.pth"
SECONDS = 1.0  # of the clip kept: about 22 frames


def cut(src: Path, dst: Path, seconds: float) -> Path:
    """The packets of ``src`` (video and audio) before ``seconds``, copied (the video has no B-frames)."""
    with av.open(str(src)) as c, av.open(str(dst), "w") as o:
        streams = [s for s in c.streams if s.type in ("video", "audio")]
        targets = {s.index: o.add_stream_from_template(s) for s in streams}
        for pkt in c.demux(*streams):
            if not pkt.size or pkt.pts is None or pkt.pts * pkt.time_base >= seconds:
                continue
            pkt.stream = targets[pkt.stream.index]
            o.mux(pkt)
    return dst


Edit = Callable[[int, av.VideoFrame], av.VideoFrame]


def reencode(
    src: Path,
    dst: Path,
    audio_from: Path,
    edit: Edit | None = None,
    *,
    codec: str = "ffv1",
    pix_fmt: str | None = None,
    options: dict[str, str] | None = None,
    keep: int | None = None,
    pts_shift: dict[int, int] | None = None,
) -> Path:
    """The video of ``src`` re-encoded frame by frame (``edit`` may change a frame), with the audio
    packets of ``audio_from`` copied as the writer copies them (the input's, not ``src``'s rounded times).

    keep: only the first ``keep`` frames; pts_shift: frame index -> ticks added to its pts.
    """
    # as the writer does: FFmpeg would shift every time so the AAC priming packet's is 0
    keep_times = {"avoid_negative_ts": "disabled"} if dst.suffix == ".mkv" else {}
    with (
        av.open(str(src)) as c,
        av.open(str(audio_from)) as a,
        av.open(str(dst), "w", container_options=keep_times) as o,
    ):
        vin = c.streams.video[0]
        vout = o.add_stream(codec, rate=vin.average_rate or 25, options=options or {})
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        vout.pix_fmt = pix_fmt or vin.codec_context.pix_fmt
        vout.codec_context.time_base = vin.time_base
        vout.time_base = vin.time_base
        audio = {s.index: o.add_stream_from_template(s) for s in a.streams.audio}
        for index, frame in enumerate(c.decode(vin)):
            if keep is not None and index >= keep:
                break
            pts = frame.pts + (pts_shift or {}).get(index, 0)
            if edit is not None:
                frame = edit(index, frame)
            if pix_fmt is not None and frame.format.name != pix_fmt:
                frame = frame.reformat(format=pix_fmt)
            frame.pts, frame.time_base = pts, vin.time_base
            frame.pict_type = av.video.frame.PictureType.NONE
            o.mux(vout.encode(frame))
        o.mux(vout.encode())
        for pkt in a.demux(*a.streams.audio):
            if pkt.size:
                pkt.stream = audio[pkt.stream.index]
                o.mux(pkt)
    return dst


def with_changes(frame: av.VideoFrame, changes: list[tuple[int, int, int]]) -> av.VideoFrame:
    """A copy of an 8-bit planar ``frame`` with the samples at (plane, x, y) (plane coordinates) flipped by 64."""
    out = av.VideoFrame(frame.width, frame.height, frame.format.name)
    for src, dst in zip(frame.planes, out.planes, strict=True):
        a = np.frombuffer(src, np.uint8).reshape(-1, src.line_size)
        b = np.frombuffer(dst, np.uint8).reshape(-1, dst.line_size)
        w = min(src.line_size, dst.line_size)
        b[:, :w] = a[:, :w]
    for plane, x, y in changes:
        view = np.frombuffer(out.planes[plane], np.uint8).reshape(-1, out.planes[plane].line_size)
        view[y, x] ^= 0x40
    return out


@pytest.fixture(scope="module")
def restored(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The clip's first second, and its restoration to FFV1 in Matroska with the run's stats."""
    root = tmp_path_factory.mktemp("verify")
    torch.manual_seed(7)
    weights = save_model(PaniniNet(VARIANTS["tiny"]).eval(), root / "tiny.safetensors", random_seed=7)
    clip = cut(testdata / CLIP, root / "clip.mp4", SECONDS)
    out, stats = root / "restored.mkv", root / "stats.json"
    args = [str(clip), str(out), "-q", "--model", str(weights), "--detector-weights", str(testdata / DETECTOR)]
    args += ["--device", "cpu", "--codec", "ffv1", "--stats-json", str(stats), "--verify"]
    assert main(args) == 0
    return {"clip": clip, "out": out, "stats": stats}


def regions_of(stats: dict, frame: int) -> list[tuple[int, int, int, int]]:
    rows = stats["stage_stats"]["restore"]["paste_regions"]["rows"]
    return [tuple(r[1:]) for r in rows if r[0] == frame]


def test_a_lossless_restoration_changes_no_sample_outside_the_faces(restored: dict[str, Path], capsys) -> None:
    stats = load_stats(restored["stats"])
    result = verify_files(restored["clip"], restored["out"], stats)
    assert result.ok, result.summary()
    n = result.frames.input
    assert n == result.frames.output and 15 <= n <= 30
    assert result.timestamps.status == "ok" and result.timestamps.compared == n
    assert [(a.status, a.copied, a.same_bytes, a.codec_out) for a in result.audio] == [("ok", True, True, "aac")]
    assert result.audio[0].packets_in == result.audio[0].packets_out > 20
    s = result.samples
    assert (s.status, s.lossless, s.codec, s.changed) == ("ok", True, "ffv1", 0)
    assert s.regions >= n  # a face in every frame: the check covered real paste regions
    assert [p.plane for p in s.planes] == ["Y", "Cb", "Cr"] and all(p.compared > 0 for p in s.planes)
    # the command says the same, as JSON
    capsys.readouterr()
    assert (
        main(["verify", str(restored["clip"]), str(restored["out"]), "--stats", str(restored["stats"]), "--json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["samples"]["changed"] == 0 and data["frames"]["output"] == n
    # without stats: frames, times and audio still checked; the samples are said not comparable
    bare = verify_files(restored["clip"], restored["out"])
    assert bare.ok and bare.samples.status == "not comparable" and "no stats" in bare.samples.detail


def test_samples_changed_outside_the_faces_are_counted_exactly(
    restored: dict[str, Path], tmp_path: Path, capsys
) -> None:
    stats = load_stats(restored["stats"])
    frame = 3
    regions = regions_of(stats, frame)
    assert regions
    x0, y0, x1, y1 = regions[0]
    with av.open(str(restored["out"])) as c:
        w, h = c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height
    outside = ~region_mask((w, h), regions)
    ys, xs = np.nonzero(outside)
    ox, oy = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
    # one luma and one Cr sample outside the regions, one luma sample inside a face's region
    changes = [(0, ox, oy), (2, ox // 2, oy // 2), (0, (x0 + x1) // 2, (y0 + y1) // 2)]

    def alter(index: int, vf: av.VideoFrame) -> av.VideoFrame:
        return with_changes(vf, changes) if index == frame else vf

    altered = reencode(restored["out"], tmp_path / "altered.mkv", restored["clip"], alter)
    result = verify_files(restored["clip"], altered, stats)
    assert not result.ok and result.samples.status == "failed"
    assert {p.plane: p.changed for p in result.samples.planes} == {"Y": 1, "Cb": 0, "Cr": 1}
    assert result.frames.status == result.timestamps.status == "ok" and result.audio[0].status == "ok"
    capsys.readouterr()
    assert main(["verify", str(restored["clip"]), str(altered), "--stats", str(restored["stats"])]) == 5
    captured = capsys.readouterr()
    assert "2 of the" in captured.err and "samples outside the" in captured.err and "must be 0" in captured.err


def test_a_lossy_output_is_reported_not_bit_exact(restored: dict[str, Path], tmp_path: Path) -> None:
    stats = load_stats(restored["stats"])
    lossy = reencode(
        restored["out"],
        tmp_path / "lossy.mp4",
        restored["clip"],
        codec="libx264",
        options={"crf": "30", "preset": "ultrafast"},
    )
    result = verify_files(restored["clip"], lossy, stats)
    assert result.ok and result.samples.status == "info" and result.samples.lossless is False
    assert "not bit-exact" in result.samples.detail and result.samples.changed > 0
    psnr = [p.psnr_db for p in result.samples.planes]
    assert all(p is not None and 25 < p < 60 for p in psnr), psnr
    # x264 at crf 0 is lossless: checked bit for bit when the run's config says crf 0
    exact = reencode(
        restored["out"],
        tmp_path / "qp0.mp4",
        restored["clip"],
        codec="libx264",
        options={"crf": "0", "preset": "ultrafast"},
    )
    crf0 = {**stats, "config": {**stats["config"], "io": {**stats["config"]["io"], "crf": 0}}}
    result = verify_files(restored["clip"], exact, crf0)
    assert result.ok and (result.samples.status, result.samples.lossless, result.samples.changed) == ("ok", True, 0)
    # another pixel format: not comparable, with the reason
    other = reencode(restored["out"], tmp_path / "444.mkv", restored["clip"], pix_fmt="yuv444p")
    result = verify_files(restored["clip"], other, stats)
    assert result.ok and result.samples.status == "not comparable" and "yuv444p" in result.samples.detail
    # a deinterlaced run: other frames than the input's, so frames, times and samples are not compared
    source = {**stats["stage_stats"].get("source", {}), "deinterlace": {"filter": "bwdif=mode=send_frame"}}
    deint = {**stats, "stage_stats": {**stats["stage_stats"], "source": source}}
    result = verify_files(restored["clip"], restored["out"], deint)
    assert result.ok and {result.frames.status, result.timestamps.status, result.samples.status} == {"not comparable"}
    assert "deinterlaced (bwdif=mode=send_frame)" in result.samples.detail


def test_lost_frames_and_moved_timestamps_fail(restored: dict[str, Path], tmp_path: Path, capsys) -> None:
    stats = load_stats(restored["stats"])
    n = verify_files(restored["clip"], restored["out"]).frames.input
    short = reencode(restored["out"], tmp_path / "short.mkv", restored["clip"], keep=n - 3)
    result: Verification = verify_files(restored["clip"], short, stats)
    assert not result.ok and (result.frames.status, result.frames.output) == ("failed", n - 3)
    assert "3 lost" in result.frames.detail and result.samples.status == "not comparable"
    assert result.timestamps.compared == n - 3 and result.timestamps.status == "ok"
    capsys.readouterr()
    assert main(["verify", str(restored["clip"]), str(short), "--stats", str(restored["stats"])]) == 5
    assert "3 lost" in capsys.readouterr().err
    # the last frame 1.5 frames late (its gap before is 1 or 2 frames: either way past half of it)
    with av.open(str(restored["out"])) as c:
        tb = c.streams.video[0].time_base
    late = round(Fraction(3, 2) / 30 / tb)  # 30 fps: a frame is 1/30 s
    moved = reencode(restored["out"], tmp_path / "moved.mkv", restored["clip"], pts_shift={n - 1: late})
    result = verify_files(restored["clip"], moved, stats)
    assert not result.ok and (result.timestamps.status, result.timestamps.differ) == ("failed", 1)
    assert result.timestamps.examples[0][0] == n - 1 and f"frame {n - 1}:" in result.timestamps.detail


def test_bad_arguments_exit_with_their_codes(testdata: Path, tmp_path: Path, capsys) -> None:
    clip = testdata / CLIP
    bad, wrong = tmp_path / "bad.json", tmp_path / "wrong.json"
    bad.write_text("{")
    wrong.write_text('{"frames": 3}')
    assert main(["verify", str(tmp_path / "missing.mp4"), str(clip)]) == 3
    assert main(["verify", str(clip), str(testdata / "MANIFEST.md")]) == 3  # not media
    assert main(["verify", str(clip), str(clip), "--stats", str(bad)]) == 3
    assert main(["verify", str(clip), str(clip), "--stats", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert "not a JSON file" in err and "no stage_stats" in err and "Traceback" not in err
    assert main(["verify", str(clip), str(clip)]) == 0  # a file is its own faithful copy
    assert "ok" in capsys.readouterr().out
