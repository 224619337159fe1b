"""A live run's wiring without a server: a file played at its own rate (``PacedSource``) through
the real face stages, with the latency budget, the latency meter, the health line and the
graceful stop on a signal."""

from __future__ import annotations

import _thread
import os
import threading
import time
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from panini_video.config import RunConfig
from panini_video.io import VideoReader
from panini_video.io.probe import probe
from panini_video.models import VARIANTS, PaniniNet
from panini_video.records import Face, Frame, FrameItem
from panini_video.run.late import LateGate
from panini_video.run.pipeline import build_stages, run
from panini_video.run.sinks import FileSink
from panini_video.run.sources import PacedSource
from panini_video.runtime.latency import LatencyMeter
from panini_video.runtime.stage import Stage

CLIP = "videos/lowq_real_388x512_noaudio.mp4"  # 20 fps, one face in every frame


@pytest.fixture(scope="module")
def tiny() -> PaniniNet:
    torch.manual_seed(7)
    return PaniniNet(VARIANTS["tiny"]).eval()


def live_config(**live: Any) -> RunConfig:
    return RunConfig().with_overrides(
        {
            "runtime": {"queue_size": 2, "backpressure": "drop-oldest"},
            "detect": {"batch_frames": 1, "det_size": 320},
            "restore": {"batch_size": 1, "max_wait_ms": 0.0, "device": "cpu"},
            "io": {"preset": "ultrafast"},
            "live": live,
        }
    )


class Slow(Stage):
    """The real stage, with ``delay`` seconds more for every frame that has faces (an overloaded restorer)."""

    def __init__(self, inner: Stage, delay: float) -> None:
        self.inner, self.delay, self.name = inner, delay, inner.name

    def start(self) -> None:
        self.inner.start()

    def process(self, item: Any) -> Iterable[Any]:
        if item.faces:
            time.sleep(self.delay)
        return self.inner.process(item)

    def flush(self) -> Iterable[Any]:
        return self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    def stats(self) -> dict[str, Any]:
        return self.inner.stats()


def _sample_rss(out: list[int], seconds: float) -> None:
    """The process's resident memory every 0.25 s for ``seconds``."""
    page = os.sysconf("SC_PAGE_SIZE")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with open("/proc/self/statm") as f:
            out.append(int(f.read().split()[1]) * page)
        time.sleep(0.25)


def test_latency_percentiles_are_within_one_percent_of_the_exact_ones() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(mean=np.log(0.08), sigma=0.6, size=20_000)
    meter = LatencyMeter(window=500)
    for v in values:
        meter.add(float(v))
    for q in (50, 95, 99):
        exact = float(np.percentile(values, q, method="inverted_cdf"))
        assert meter.percentile(q) == pytest.approx(exact, rel=0.011)
    assert meter.recent(95) == pytest.approx(float(np.percentile(values[-500:], 95, method="inverted_cdf")), rel=1e-9)
    assert meter.to_dict()["frames"] == 20_000 and meter.max == pytest.approx(values.max())
    assert LatencyMeter().percentile(50) is None and LatencyMeter().to_dict()["p95_ms"] is None


def _item(index: int, age: float, faces: int = 1) -> FrameItem:
    frame = Frame(
        index=index, pts=index, time_base=Fraction(1, 25), image=np.zeros((8, 8, 3), np.uint8), arrival=100.0 - age
    )
    face = Face(box=np.array([0, 0, 4, 4], np.float32), landmarks=np.zeros((5, 2), np.float32), score=0.9, track=1)
    return FrameItem(frame=frame, faces=(face,) * faces)


class Echo(Stage):
    name = "restore"

    def __init__(self) -> None:
        self.seen: list[FrameItem] = []

    def process(self, item: Any) -> Iterable[Any]:
        self.seen.append(item)
        return (item,)


def test_the_gate_passes_young_frames_and_strips_or_drops_late_ones() -> None:
    dropped: list[int] = []
    inner = Echo()
    passing = LateGate(inner, 0.2, "pass", clock=lambda: 100.0)
    (young,) = passing.process(_item(0, 0.1))
    (late,) = passing.process(_item(1, 0.3))
    assert len(young.faces) == 1 and late.faces == () and late.frame.index == 1
    assert [len(it.faces) for it in inner.seen] == [1, 0]  # the restorer saw the late frame without faces
    assert (passing.passed, passing.dropped, passing.faces_skipped) == (1, 0, 1)
    dropping = LateGate(Echo(), 0.2, "drop", on_drop=dropped.append, clock=lambda: 100.0)
    assert list(dropping.process(_item(5, 0.5))) == [] and dropped == [5]
    assert len(list(dropping.process(_item(6, 0.05)))) == 1
    assert dropping.name == "restore"
    assert dropping.late_stats() == {
        "max_latency_ms": 200.0,
        "policy": "drop",
        "late_passed": 0,
        "late_dropped": 1,
        "faces_skipped": 1,
        "expected_restore_ms": 0.0,
    }


def test_a_paced_file_arrives_at_its_own_rate_and_stops_when_asked(testdata: Path) -> None:
    source = PacedSource(testdata / CLIP, loop=True)
    rate = float(source.info.frame_rate)
    timer = threading.Timer(2.0, source.stop)
    timer.start()
    t0 = time.monotonic()
    frames = list(source.frames(4))
    elapsed = time.monotonic() - t0
    source.close()
    assert elapsed < 3.0
    assert len(frames) == pytest.approx(rate * elapsed, abs=3)
    pts = [f.pts for f in frames]
    assert pts[0] == 0 and all(b > a for a, b in zip(pts, pts[1:], strict=False))
    arrivals = [f.arrival for f in frames]
    assert all(a is not None for a in arrivals)
    assert [f.index for f in frames] == list(range(len(frames)))


def test_a_looped_file_keeps_its_timestamps_increasing_across_the_loop(testdata: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.mp4"  # 10 frames, so the loop comes within a second
    from panini_video.io import VideoWriter

    info = probe(testdata / CLIP)
    with VideoReader(testdata / CLIP) as reader, VideoWriter(short, info, audio_from=None) as writer:
        for frame in reader:
            writer.write(frame)
            if frame.index == 9:
                break
    source = PacedSource(short, loop=True, speed=4.0)
    frames = []
    for frame in source.frames(4):
        frames.append(frame)
        if len(frames) == 25:
            source.stop()
    source.close()
    pts = [f.pts for f in frames]
    assert len(frames) == 25 and all(b > a for a, b in zip(pts, pts[1:], strict=False))
    step = pts[1] - pts[0]
    assert pts[10] - pts[9] == step  # one frame after the last, not back to 0


def test_an_overloaded_restorer_keeps_latency_within_the_budget_by_skipping_late_frames(
    testdata: Path, tmp_path: Path, tiny: PaniniNet
) -> None:
    """The restorer takes 150 ms a face at 20 fps input (3x too slow): with a 400 ms budget the
    late frames pass unrestored, so p95 latency stays near the budget instead of growing."""
    config = live_config(max_latency_ms=400.0, late="pass")
    source = PacedSource(testdata / CLIP)
    stages = build_stages(config, source.info, model=tiny)
    stages[-1] = Slow(stages[-1], 0.15)
    timer = threading.Timer(8.0, source.stop)
    timer.start()
    rss: list[int] = []
    sampler = threading.Thread(target=_sample_rss, args=(rss, 8.0), daemon=True)
    sampler.start()
    report = run(source, FileSink(tmp_path / "out.mp4", config.io), config, stages=stages)
    timer.cancel()
    sampler.join(2.0)
    live = report.live
    assert live is not None
    # memory flat: what the run holds after its first seconds does not grow with the backlog
    settled = rss[len(rss) // 4 :]
    assert max(settled) - min(settled) < 80 * 2**20, [r // 2**20 for r in rss]
    assert all(s.queue_depth_max <= config.runtime.queue_size for s in report.graph.stages)
    late = live["late"]
    assert late["late_passed"] > 10  # most frames could not be restored in time, and were counted
    restored = report.stage_stats["restore"]["faces"]
    assert 5 < restored < report.frames_out  # some were restored in time
    # within the budget: the gate counts what restoring takes; what is left after it is the reorder
    # buffer and the encoder (a few ms) and the variation of the restore time
    assert live["latency"]["p95_ms"] < 400 * 1.25, live["latency"]
    assert report.frames_out == report.frames_in - live["dropped"]["total"]
    with VideoReader(tmp_path / "out.mp4") as reader:
        assert sum(1 for _ in reader) == report.frames_out


def test_without_a_budget_the_same_restorer_lets_latency_grow(testdata: Path, tmp_path: Path, tiny: PaniniNet) -> None:
    """The control of the test above: no --max-latency, the delay is set by the queues only and
    frames are dropped at the source's queue instead; latency is well above the budgeted run's."""
    config = live_config()
    source = PacedSource(testdata / CLIP)
    stages = build_stages(config, source.info, model=tiny)
    stages[-1] = Slow(stages[-1], 0.15)
    timer = threading.Timer(4.0, source.stop)
    timer.start()
    report = run(source, FileSink(tmp_path / "out.mp4", config.io), config, stages=stages)
    timer.cancel()
    assert report.live is not None and report.live["late"] is None
    assert report.live["dropped"]["queue"] > 10  # the source's queue dropped the oldest instead
    assert report.live["latency"]["p95_ms"] > 600


def test_a_signal_ends_a_live_run_with_the_output_complete(testdata: Path, tmp_path: Path) -> None:
    config = live_config().with_overrides({"annotate": True})
    source = PacedSource(testdata / CLIP, loop=True)
    lines: list[str] = []
    timer = threading.Timer(2.5, _thread.interrupt_main)  # Ctrl-C in the main thread, as a signal would
    timer.start()
    report = run(source, FileSink(tmp_path / "out.mp4", config.io), config, on_health=lines.append)
    assert report.live is not None and report.live["stopped_by"]
    with VideoReader(tmp_path / "out.mp4") as reader:
        assert sum(1 for _ in reader) == report.frames_out > 30


def test_the_health_line_comes_every_interval_with_the_figures(testdata: Path, tmp_path: Path) -> None:
    config = live_config(stats_every=0.5).with_overrides({"annotate": True})
    source = PacedSource(testdata / CLIP)
    lines: list[str] = []
    timer = threading.Timer(2.6, source.stop)
    timer.start()
    report = run(source, FileSink(tmp_path / "out.mp4", config.io), config, on_health=lines.append)
    assert 3 <= len(lines) <= 6
    assert all(line.startswith("live: in ") and "p95" in line and "reconnects 0" in line for line in lines)
    fps = [float(line.split("in ")[1].split(" fps")[0]) for line in lines[1:]]
    assert all(abs(f - 20) < 6 for f in fps)  # the clip's 20 fps, measured over each interval
    assert report.live is not None and report.live["frames_in"] == report.frames_in
