"""Sources and sinks of a run on real clips: one file into several, and what a failure leaves."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np
import pytest

from panini_video.config import IOConfig, RunConfig
from panini_video.errors import InputError, ProcessingError
from panini_video.records import FrameItem
from panini_video.run import FileSink, FileSource, MultiSink, run
from panini_video.runtime.stage import Stage

CLIP = "videos/talking_vfr_700.mp4"  # 135 frames, variable timing, AAC audio
FAST = IOConfig(preset="ultrafast")


def times_and_audio(path: Path) -> tuple[list[float], list[str]]:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        times = [float(f.pts * vs.time_base) for f in c.decode(vs)]
        return times, [a.codec_context.name for a in c.streams.audio]


class FailAt(Stage):
    name = "fail-at"

    def __init__(self, at: int) -> None:
        self.at = at

    def process(self, item: FrameItem) -> Iterable[FrameItem]:
        if item.index == self.at:
            raise RuntimeError("stage fails")
        return [item]


def test_one_file_into_two_sinks_gives_two_whole_outputs(testdata: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.mp4", tmp_path / "b.mkv"
    report = run(FileSource(testdata / CLIP), MultiSink([FileSink(a, FAST), FileSink(b, FAST)]), RunConfig(), stages=[])
    src_times, src_audio = times_and_audio(testdata / CLIP)
    for out in (a, b):
        times, audio = times_and_audio(out)
        assert np.allclose(times, src_times, atol=1e-3) and len(times) == 135
        assert audio == src_audio == ["aac"]
    assert report.frames_out == 135 and report.output == f"{a}, {b}"
    assert report.memory is not None and report.memory.frames_fixed > 0


def test_a_failing_stage_leaves_none_of_the_sinks(testdata: Path, tmp_path: Path) -> None:
    sinks = MultiSink([FileSink(tmp_path / "a.mp4", FAST), FileSink(tmp_path / "b.mp4", FAST)])
    with pytest.raises(ProcessingError, match="stage fails"):
        run(FileSource(testdata / CLIP), sinks, RunConfig(), stages=[FailAt(20)])
    assert list(tmp_path.iterdir()) == []


def test_a_file_source_gives_its_frames_once(testdata: Path) -> None:
    source = FileSource(testdata / CLIP)
    assert source.info.frame_count == 135 and not source.live and source.audio_path == testdata / CLIP
    assert sum(1 for _ in source.frames(queue_size=2)) == 135
    with pytest.raises(RuntimeError, match="already"):
        source.frames(queue_size=2)
    source.close()
    source.close()  # twice is fine


def test_a_missing_file_is_an_input_error_before_any_sink_exists(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        FileSource(tmp_path / "nope.mp4")
