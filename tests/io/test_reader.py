"""VideoReader: every frame, its pts and pixels, in order; errors reach the consumer; early stop."""

from __future__ import annotations

import random
import time
from pathlib import Path

import av
import numpy as np
import pytest

from panini_video.errors import CorruptInputError, NoVideoStreamError
from panini_video.io import VideoReader
from panini_video.records import Frame
from tests.io.iomedia import VFR_PTS, video_times


def test_reader_matches_plain_pyav_decode(clips: dict[str, Path]) -> None:
    path = clips["plain"]
    with av.open(str(path)) as c:
        # PyAV's own yuv420p array: the Y, U and V planes one after the other, as decoded
        expected = [(f.pts, f.format.name, f.to_ndarray()) for f in c.decode(video=0)]
    with VideoReader(path) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(len(expected)))
    assert [f.pts for f in frames] == [p for p, _, _ in expected]
    for frame, (_, pix_fmt, samples) in zip(frames, expected, strict=True):
        assert isinstance(frame, Frame) and not frame.is_rgb
        assert frame.time_base == reader.info.time_base
        assert frame.image.format.name == pix_fmt == "yuv420p"  # kept as decoded: no conversion
        flat = np.concatenate([p.ravel() for p in frame.image.planes])
        np.testing.assert_array_equal(flat, samples.ravel())


def test_reader_keeps_irregular_pts(clips: dict[str, Path]) -> None:
    with VideoReader(clips["vfr"]) as reader:
        assert [f.pts for f in reader] == list(VFR_PTS)


@pytest.mark.parametrize(
    ("name", "count"), [("talking_vfr_700.mp4", 135), ("hamilton_short.mp4", 275), ("talking_hdtf_mpeg4_512.mp4", 200)]
)
def test_reader_real_clips_every_frame(testdata: Path, name: str, count: int) -> None:
    path = testdata / "videos" / name
    with VideoReader(path, threads=2) as reader:
        times = [f.time for f in reader]
    assert len(times) == count  # frame counts of MANIFEST.md
    assert times == [float(t) for t in video_times(path)]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))


def test_reader_synthesises_missing_pts(tmp_path: Path) -> None:
    # a raw H.264 elementary stream carries no timestamps at all
    raw = tmp_path / "raw.h264"
    with av.open(str(raw), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for i in range(6):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 30, np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with VideoReader(raw) as reader:
        frames = list(reader)
        assert reader.synthesised_pts == 6
    assert len(frames) == 6
    pts = [f.pts for f in frames]
    assert pts[0] == 0 and all(b > a for a, b in zip(pts, pts[1:], strict=False))
    # one frame apart at the stream's rate
    assert frames[1].time == pytest.approx(1 / 25)


def test_reader_stops_promptly_when_consumer_stops(testdata: Path) -> None:
    reader = VideoReader(testdata / "videos" / "crowd_multiface_1080p.mp4", queue_size=2)
    taken = []
    for frame in reader:
        taken.append(frame.index)
        if len(taken) == 3:
            break
    reader.close()
    assert taken == [0, 1, 2]
    assert reader._thread is not None and not reader._thread.is_alive()


def test_reader_queue_is_bounded(testdata: Path) -> None:
    with VideoReader(testdata / "videos" / "hamilton_short.mp4", queue_size=3) as reader:
        it = iter(reader)
        next(it)
        time.sleep(0.5)  # give the producer every chance to run ahead
        # at most: the queue, plus the one it is blocked trying to put
        assert reader._decoded - reader.frames_read <= 3 + 1


def test_reader_close_without_iterating(clips: dict[str, Path]) -> None:
    with VideoReader(clips["plain"]) as reader:
        assert reader.info.frame_count == 12
    assert reader._thread is None


def _corrupt(testdata: Path, tmp_path: Path) -> Path:
    data = bytearray((testdata / "videos" / "hamilton_short.mp4").read_bytes())
    rng = random.Random(1)
    mid = len(data) // 2  # inside the media data; the index (moov) is at the end of this file
    data[mid : mid + 4096] = bytes(rng.randrange(256) for _ in range(4096))
    out = tmp_path / "corrupt.mp4"
    out.write_bytes(bytes(data))
    return out


def test_reader_mid_stream_corruption_is_an_error(testdata: Path, tmp_path: Path) -> None:
    # Decision: a packet the decoder refuses is an error, never a silently missing frame.
    path = _corrupt(testdata, tmp_path)
    seen = 0
    with pytest.raises(CorruptInputError) as caught, VideoReader(path) as reader:
        for _ in reader:
            seen += 1
    assert str(path) in str(caught.value)
    assert "decoding failed" in str(caught.value)
    assert 0 < seen < 275


def test_reader_keeps_concealed_frames(testdata: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Decision: small damage the decoder conceals keeps every frame, counted and logged.
    data = bytearray((testdata / "videos" / "hamilton_short.mp4").read_bytes())
    rng = random.Random(0)
    for _ in range(3):
        at = rng.randrange(1000, 600000)  # inside the media data (index at the end)
        data[at : at + 16] = bytes(rng.randrange(256) for _ in range(16))
    path = tmp_path / "scratched.mp4"
    path.write_bytes(bytes(data))
    with VideoReader(path) as reader:
        count = sum(1 for _ in reader)
        assert reader.corrupt_frames >= 1
    assert count == 275
    assert any("damaged" in r.getMessage() for r in caplog.records)


def test_reader_audio_only(clips: dict[str, Path]) -> None:
    with pytest.raises(NoVideoStreamError):
        VideoReader(clips["audio_only"])


def test_a_file_that_ends_before_its_index_said_is_an_input_error(clips: dict[str, Path]) -> None:
    import dataclasses

    from panini_video.errors import InputError
    from panini_video.io import probe

    info = probe(clips["plain"])
    assert info.frame_count is not None
    promised = dataclasses.replace(info, frame_count=info.frame_count + 5)  # as if frames went missing
    expected = f"of the {info.frame_count + 5} frames its index lists"
    with pytest.raises(InputError, match=expected), VideoReader(clips["plain"], info=promised) as reader:
        for _ in reader:
            pass
    with VideoReader(clips["plain"], info=info) as reader:  # the true count passes
        assert sum(1 for _ in reader) == info.frame_count


def test_a_file_that_changes_while_read_is_an_input_error(clips: dict[str, Path], tmp_path: Path) -> None:
    from panini_video.errors import InputError

    src = tmp_path / "c.mp4"
    src.write_bytes(clips["plain"].read_bytes())
    with pytest.raises(InputError, match="changed while it was read"), VideoReader(src, queue_size=1) as reader:
        for i, _ in enumerate(reader):
            if i == 1:
                with open(src, "ab") as f:
                    f.write(b"\0" * 100)
