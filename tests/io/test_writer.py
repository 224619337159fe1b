"""VideoWriter: round trips keep every frame, pts, audio packet, rotation, size and tag; no half files."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from panini_video.config import IOConfig
from panini_video.errors import InputError, OutputError, UsageError
from panini_video.io import VideoReader, VideoWriter, probe
from panini_video.records import Frame
from tests.io.iomedia import VFR_PTS, audio_packets, stream_duration, video_times

FAST = IOConfig(preset="ultrafast")


def copy_video(src: Path, dst: Path, config: IOConfig = FAST, **kwargs: object) -> None:
    with VideoReader(src) as reader, VideoWriter(dst, reader.info, config, **kwargs) as writer:  # type: ignore[arg-type]
        for frame in reader:
            writer.write(frame)


def assert_same_timing(src: Path, dst: Path) -> None:
    a, b = video_times(src), video_times(dst)
    assert len(a) == len(b)
    assert a == b  # exact, frame by frame
    info = probe(src)
    one_frame = 1 / info.frame_rate
    assert abs(stream_duration(dst) - stream_duration(src)) <= one_frame
    # a late first frame is kept (an MP4 edit list), not shifted to zero
    assert probe(dst).start_time == pytest.approx(info.start_time, abs=1e-6)


@pytest.mark.parametrize("name", ["talking_vfr_700.mp4", "hamilton_short.mp4", "talking_hdtf_mpeg4_512.mp4"])
def test_round_trip_real_clip_keeps_frames_pts_and_audio(testdata: Path, tmp_path: Path, name: str) -> None:
    src = testdata / "videos" / name
    dst = tmp_path / "out.mp4"
    copy_video(src, dst)
    assert_same_timing(src, dst)
    # audio copied, not re-encoded: same bytes at the same times
    assert audio_packets(dst) == audio_packets(src)
    assert len(audio_packets(src)) > 100
    assert [s.kind for s in probe(dst).streams] == ["video", "audio"]


def test_round_trip_no_audio(testdata: Path, tmp_path: Path) -> None:
    src = testdata / "videos" / "lowq_real_388x512_noaudio.mp4"
    dst = tmp_path / "out.mp4"
    copy_video(src, dst)
    assert_same_timing(src, dst)
    info = probe(dst)
    assert info.audio_streams == () and info.size == (388, 512)


@pytest.mark.parametrize("name", ["vfr", "ntsc", "plain", "rotate_tag"])  # rotate_tag: Matroska, 1/1000
def test_round_trip_generated_timing(clips: dict[str, Path], tmp_path: Path, name: str) -> None:
    dst = tmp_path / "out.mp4"
    copy_video(clips[name], dst)
    assert_same_timing(clips[name], dst)


def test_vfr_stays_variable(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    copy_video(clips["vfr"], dst)
    assert video_times(dst) == [Fraction(p, 15360) for p in VFR_PTS]


def test_ntsc_rate_stays_30000_1001(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    copy_video(clips["ntsc"], dst)
    assert probe(dst).frame_rate == Fraction(30000, 1001)
    assert video_times(dst) == [Fraction(1001 * i, 30000) for i in range(10)]


def test_odd_size_is_kept(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    copy_video(clips["odd"], dst)
    info = probe(dst)
    assert info.size == (853, 479)
    assert info.pix_fmt == "yuv444p"
    with VideoReader(dst) as reader, VideoReader(clips["odd"]) as original:
        for a, b in zip(reader, original, strict=True):
            # lossy, but the picture is the same picture
            assert np.abs(a.rgb().astype(int) - b.rgb().astype(int)).mean() < 4


def test_odd_size_with_explicit_yuv420p_pads(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    copy_video(clips["odd"], dst, IOConfig(preset="ultrafast", pix_fmt="yuv420p"))
    info = probe(dst)
    assert (info.size, info.pix_fmt) == ((854, 480), "yuv420p")
    assert len(video_times(dst)) == 4


def test_odd_size_webm_stays_yuv420p(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.webm"
    copy_video(clips["odd"], dst)
    info = probe(dst)
    assert (info.size, info.pix_fmt, info.codec) == ((853, 479), "yuv420p", "vp9")


@pytest.mark.parametrize(("name", "degrees"), [("rot90", 90), ("rot270", 270), ("rotate_tag", 270)])
def test_rotation_is_kept(clips: dict[str, Path], tmp_path: Path, name: str, degrees: int) -> None:
    dst = tmp_path / "out.mp4"
    copy_video(clips[name], dst)
    info = probe(dst)
    assert info.rotation == degrees
    assert info.size == probe(clips[name]).size  # pixels stay as stored; players rotate


def test_colour_matrix_and_tags_are_kept(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    copy_video(clips["bt709"], dst, IOConfig(preset="ultrafast", crf=0))
    info = probe(dst)
    assert (info.color_space, info.color_range, info.color_primaries, info.color_trc) == (1, 1, 1, 1)
    # decoded by plain PyAV, which honours the tags: the same colours (a BT.601/709 mix-up on
    # these saturated gradients is off by far more)
    with av.open(str(clips["bt709"])) as a, av.open(str(dst)) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0), strict=True):
            diff = np.abs(fa.to_ndarray(format="rgb24").astype(int) - fb.to_ndarray(format="rgb24").astype(int))
            assert diff.mean() < 2.0


@pytest.mark.parametrize("case", ["missing", "empty", "text", "audio_only", "truncated", "corrupt"])
def test_bad_input_leaves_no_output(clips: dict[str, Path], testdata: Path, tmp_path: Path, case: str) -> None:
    data = (testdata / "videos" / "hamilton_short.mp4").read_bytes()
    src = {
        "missing": tmp_path / "nowhere.mp4",
        "truncated": tmp_path / "half.mp4",
        "corrupt": tmp_path / "corrupt.mp4",
    }.get(case) or clips[case]
    if case == "truncated":
        src.write_bytes(data[: len(data) // 2])
    if case == "corrupt":  # random bytes in the middle of the media data
        mid = len(data) // 2
        src.write_bytes(data[:mid] + np.random.default_rng(1).bytes(4096) + data[mid + 4096 :])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InputError) as caught:
        copy_video(src, out_dir / "out.mp4")
    assert str(src) in str(caught.value)
    assert os.listdir(out_dir) == []


def test_anamorphic_pixels_are_kept(clips: dict[str, Path], tmp_path: Path) -> None:
    assert probe(clips["anamorphic"]).sample_aspect_ratio == Fraction(32, 27)
    dst = tmp_path / "out.mp4"
    copy_video(clips["anamorphic"], dst)
    assert probe(dst).sample_aspect_ratio == Fraction(32, 27)
    assert probe(clips["plain"]).sample_aspect_ratio is None  # square pixels


def test_container_tags_are_kept(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    copy_video(clips["plain"], dst)
    tags = probe(dst).metadata
    assert tags["title"] == "plain clip" and tags["comment"] == "made by the io tests"


def test_generated_aac_round_trip(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mov"
    copy_video(clips["aac"], dst)
    assert audio_packets(dst) == audio_packets(clips["aac"])
    assert_same_timing(clips["aac"], dst)


def test_every_audio_track_is_carried(clips: dict[str, Path], tmp_path: Path) -> None:
    src = clips["two_tracks"]
    dst = tmp_path / "out.mp4"
    copy_video(src, dst)
    tracks = probe(dst).audio_streams
    assert [t.metadata.get("language") for t in tracks] == ["eng", "fra"]
    for k in range(2):
        assert [p for p, _, _ in audio_packets(dst, k)] == [p for p, _, _ in audio_packets(src, k)]
    assert audio_packets(src, 0) != audio_packets(src, 1)  # two different tones, not one twice


def test_audio_from_none_drops_audio(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    copy_video(clips["aac"], dst, audio_from=None)
    assert probe(dst).audio_streams == ()


def test_mkv_copies_audio(testdata: Path, tmp_path: Path) -> None:
    src = testdata / "videos" / "talking_hdtf_mpeg4_512.mp4"
    dst = tmp_path / "out.mkv"
    copy_video(src, dst)
    a, b = audio_packets(src), audio_packets(dst)
    assert [p for p, _, _ in a] == [p for p, _, _ in b]  # bytes; Matroska keeps times in ms
    assert video_times(dst) == video_times(src)  # 25 fps: every pts is a whole millisecond


def test_webm_transcodes_audio_to_opus(testdata: Path, tmp_path: Path) -> None:
    src = testdata / "videos" / "talking_hdtf_mpeg4_512.mp4"
    dst = tmp_path / "out.webm"
    with VideoReader(src) as reader, VideoWriter(dst, reader.info, FAST) as writer:
        for frame in reader:
            if frame.index >= 25:
                break
            writer.write(frame)
    info = probe(dst)
    (audio,) = info.audio_streams
    assert (info.codec, audio.codec) == ("vp9", "opus")
    # every second of the input's audio made it, even past the last video frame written
    *_, (_, last_pts, last_dur) = audio_packets(dst)
    assert last_pts is not None and last_dur is not None
    assert float(last_pts + last_dur) == pytest.approx(probe(src).audio_streams[0].extra["duration"], abs=0.1)


def test_audio_is_interleaved_not_appended(testdata: Path, tmp_path: Path) -> None:
    src = testdata / "videos" / "hamilton_short.mp4"
    dst = tmp_path / "out.mp4"
    copy_video(src, dst)
    # in file order, the audio never runs more than a couple of seconds ahead of the video
    latest = {"video": -1.0, "audio": -1.0}
    worst = 0.0
    with av.open(str(dst)) as c:
        for p in c.demux():
            if p.size and p.dts is not None:
                latest[p.stream.type] = max(latest[p.stream.type], float(p.dts * p.time_base))
                if min(latest.values()) >= 0:
                    worst = max(worst, abs(latest["audio"] - latest["video"]))
    assert worst < 2.0


def test_upscaled_size(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    with VideoReader(clips["plain"]) as reader, VideoWriter(dst, reader.info, FAST, size=(128, 96)) as writer:
        for f in reader:
            big = np.repeat(np.repeat(f.rgb(), 2, axis=0), 2, axis=1)
            writer.write(Frame(f.index, f.pts, f.time_base, big))
    assert probe(dst).size == (128, 96)
    assert_same_timing(clips["plain"], dst)


def test_wrong_frame_size_is_refused(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    info = probe(clips["plain"])
    with (
        pytest.raises(ValueError, match="64x48"),
        VideoReader(clips["plain"]) as reader,
        VideoWriter(dst, info, FAST, size=(128, 96)) as writer,
    ):
        writer.write(next(iter(reader)))
    assert os.listdir(tmp_path) == []


def test_partial_file_until_close(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    with VideoReader(clips["plain"]) as reader:
        writer = VideoWriter(dst, reader.info, FAST)
        for f in reader:
            writer.write(f)
        names = os.listdir(tmp_path)
        assert not dst.exists()
        assert len(names) == 1 and names[0].startswith(".out.mp4.partial-") and names[0].endswith(".mp4")
        writer.close()
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_error_inside_with_leaves_nothing(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"previous result")
    info = probe(clips["aac"])
    with pytest.raises(KeyboardInterrupt), VideoReader(clips["aac"]) as reader, VideoWriter(dst, info, FAST) as writer:
        for f in reader:
            writer.write(f)
            if f.index == 5:
                raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["out.mp4"]
    assert dst.read_bytes() == b"previous result"  # the old file is untouched


def test_abort_removes_temp(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    writer = VideoWriter(dst, probe(clips["plain"]), FAST)
    writer.abort()
    writer.abort()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("target", "words"),
    [("out.avi2", "unknown output extension"), ("missing/out.mp4", "does not exist"), ("out", "unknown output")],
)
def test_bad_targets(clips: dict[str, Path], tmp_path: Path, target: str, words: str) -> None:
    with pytest.raises(OutputError, match=words):
        VideoWriter(tmp_path / target, probe(clips["plain"]), FAST)
    assert os.listdir(tmp_path) == []


def test_target_under_a_file(clips: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(OutputError, match="not a folder"):
        VideoWriter(tmp_path / "file" / "out.mp4", probe(clips["plain"]), FAST)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_folder(clips: dict[str, Path], tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            VideoWriter(locked / "out.mp4", probe(clips["plain"]), FAST)
    finally:
        locked.chmod(0o700)


def test_output_onto_input_is_refused(clips: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    src.write_bytes(clips["plain"].read_bytes())
    with pytest.raises(UsageError, match="is the input"):
        VideoWriter(src, probe(src), FAST)
    link = tmp_path / "link.mp4"
    link.symlink_to(src)
    with pytest.raises(UsageError, match="is the input"):  # through the link: the same inode
        VideoWriter(link, probe(src), FAST)
    assert src.read_bytes() == clips["plain"].read_bytes()
