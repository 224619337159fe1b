"""One run: Source -> face stages -> reorder -> Sink, through the stage graph.

The run's wiring, shared by the main command, live and batch runs: they differ in the Source and
Sink they build (``run.sources``, ``run.sinks``) and in the preset. ``build_stages`` is the
factory of the face stages for a ``RunConfig``; ``run`` plans the sink's encoders, the stages and
the memory, puts the stages between the source and the sink, runs the graph and returns a
``RunReport``. The sink is closed (a file renamed into place) only when the whole graph
finished; any failure or interruption aborts it, so no output file appears. ``runtime/`` below
stays the generic graph and knows nothing of faces or files.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from panini_video.config import RunConfig
from panini_video.errors import UsageError
from panini_video.io import VideoInfo
from panini_video.io.encoder import X264_LOOKAHEAD, X264_PER_LOOKAHEAD, EncoderPlan, encoder_frames
from panini_video.io.picture import picture_bytes
from panini_video.records import Frame, FrameItem
from panini_video.run.health import LiveMonitor
from panini_video.run.late import LateGate
from panini_video.run.sinks import FileSink, Sink
from panini_video.run.sources import FileSource, Source
from panini_video.runtime.graph import Graph
from panini_video.runtime.latency import LatencyMeter
from panini_video.runtime.memory import MemoryPlan, default_budget, plan_queues
from panini_video.runtime.reorder import DroppedIndices, ReorderBuffer
from panini_video.runtime.stage import Stage
from panini_video.runtime.stats import GraphStats

log = logging.getLogger(__name__)


class Progress(Protocol):
    """What ``run`` reports progress to (the CLI's progress bar)."""

    def start(self, info: VideoInfo) -> None: ...

    def update(self, frames_done: int) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RunReport:
    """What one run did: frames in and out, drops, the graph's figures and the config used."""

    input: str
    output: str
    frames_in: int
    frames_out: int
    dropped: int
    wall_s: float
    width: int
    height: int
    frame_rate: str
    frame_count: int | None  # what the container's header announced
    graph: GraphStats
    config: RunConfig
    stage_stats: dict[str, Any] = dataclasses.field(default_factory=dict)  # a stage's own figures, by name
    memory: MemoryPlan | None = None  # the queue depth chosen for the memory budget
    live: dict[str, Any] | None = None  # a live run's health totals (run.health.LiveMonitor.totals)
    # what stages keep for the report beyond figures (restore: each track's thumbnails); not in to_dict()
    artifacts: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def fps(self) -> float:
        return self.frames_out / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "artifacts"}
        data.update(fps=self.fps, graph=self.graph.to_dict(), config=self.config.to_dict())
        data["memory"] = None if self.memory is None else self.memory.to_dict()
        return data


def build_stages(
    config: RunConfig,
    info: VideoInfo,
    *,
    model: Any = None,
    detector: Any = None,
    fetch_progress: Callable[[int, int | None], None] | None = None,
    provenance: bool = True,
) -> list[Stage]:
    """The face stages for ``config``, in graph order: detect, track, then restore or annotate.

    provenance: the restorer keeps every paste region and each track's log for verify and the
    report; a live run, which has no end, leaves them out (they grow with every face).

    Weights are loaded here, before the graph starts and before any output exists, so a missing
    model or detector file is a ``WeightsNotFoundError`` that says how to get it. ``model`` and
    ``detector`` replace the loaded ones (tests, benches). With ``annotate`` the faces are drawn
    instead of restored and no Panini weights are needed. ``fetch_progress(done, total)`` is told
    how a first-use download of the weights goes.
    """
    from panini_video.faces.stages import AnnotateStage, DetectStage, TrackStage, load_face_detector
    from panini_video.restore.executor import resolve_device

    if config.annotate and config.restore.upscale != 1:
        raise UsageError("--upscale enlarges restored faces; it cannot be combined with --annotate")
    device = resolve_device(config.restore.device)
    detect_device = config.detect.device or str(device)
    if detector is None:
        detector = load_face_detector(config.detect, detect_device)
    stages: list[Stage] = [
        DetectStage(config.detect, detector=detector, device=detect_device, rotation=info.rotation),
        TrackStage(config.track, config.smooth, config.select, config.detect.detect_every),
    ]
    if config.annotate:
        stages.append(AnnotateStage(rotation=info.rotation))
    else:
        from panini_video.restore.stage import RestoreStage

        stages.append(
            RestoreStage(
                config.restore, config.blend, model=model, fetch_progress=fetch_progress, provenance=provenance
            )
        )
    return stages


def output_size(config: RunConfig, info: VideoInfo) -> tuple[int, int]:
    """(width, height) of the frames the last stage hands to the writer."""
    up = config.restore.upscale
    return info.width * up, info.height * up


class SinkStage(Stage):
    """The graph's last stage: hands each frame to the sink (which encodes it and muxes the audio)."""

    name = "encode"

    def __init__(self, sink: Sink, latency: LatencyMeter | None = None) -> None:
        self.sink = sink
        self.latency = latency

    def process(self, item: Any) -> Iterable[Any]:
        frame: Frame = item.frame if isinstance(item, FrameItem) else item
        self.sink.write(frame)
        if self.latency is not None and frame.arrival is not None:
            self.latency.add(time.monotonic() - frame.arrival)  # arrival at the source to encoded
        return ()


def frames_held(config: RunConfig, stages: Sequence[Stage]) -> float:
    """RGB frames (of the output size) held whatever the queue depth, the encoder's apart.

    One in each thread's hands (the source, every stage, the sink), the conversions at both ends,
    the detector's batch, the restorer's window and the decoder's frame threads (their YUV 4:2:0
    pictures count half an RGB frame each).
    """
    cores = os.cpu_count() or 1
    held = float(len(stages) + 2) + 2.0
    for stage in stages:
        if getattr(stage, "name", "") == "detect":
            held += config.detect.batch_frames
        window = getattr(stage, "window", None)
        if window is not None and hasattr(window, "capacity"):
            held += window.capacity
    decode_threads = config.io.decode_threads or cores + 1
    held += 0.5 * (decode_threads + 1)
    return held


def plan_memory(
    config: RunConfig,
    stages: Sequence[Stage],
    plans: EncoderPlan | Sequence[EncoderPlan],
    pix_fmt: str | None = None,
) -> MemoryPlan:
    """Queue depth and x264 look-ahead for ``config.runtime.max_memory`` (default: a quarter of RAM).

    The encoder is by far the largest holder (x264 medium keeps about 68 pictures), so when one
    frame per queue does not fit, its look-ahead is shortened first: compression loses a little,
    memory stays within the budget. pix_fmt: the format frames travel in (a file's pictures,
    ``io.picture.picture_bytes``); None: RGB (live sources, ``--upscale``). The encoders' holdings
    were measured in RGB frames of their picture size and are counted so.
    """
    plans = [plans] if isinstance(plans, EncoderPlan) else list(plans)
    budget = config.runtime.max_memory or default_budget()
    size = max((p.size for p in plans), key=lambda s: s[0] * s[1])
    frame_bytes = picture_bytes(pix_fmt, size)
    rgb_frames = size[0] * size[1] * 3 / frame_bytes  # one RGB frame of the encoders' counts, in frames
    queues = len(stages) + 3  # the reader's, one before each stage, the reorder buffer's and the sink's
    cores = os.cpu_count() or 1
    fixed = frames_held(config, stages)
    x264 = [p for p in plans if p.codec in ("libx264", "libx264rgb")]

    def encoders(lookahead: int | None) -> float:  # what the encoders hold, x264's look-ahead cut to this
        return rgb_frames * sum(
            encoder_frames(p.codec, p.options.get("preset"), cores, lookahead if p in x264 else None) for p in plans
        )

    lookahead: int | None = None
    if x264:
        default = max(X264_LOOKAHEAD.get(p.options.get("preset") or "medium", 40) for p in x264)
        room = budget / frame_bytes - fixed - queues - encoders(0)
        fits = max(0, int(room / (rgb_frames * X264_PER_LOOKAHEAD * len(x264))))
        if fits < default:
            lookahead = fits
            log.info("x264 look-ahead %d frames instead of %d, to fit the memory budget", fits, default)
    fixed += encoders(lookahead)
    return plan_queues(budget, frame_bytes, queues, fixed, config.runtime.queue_size, encoder_lookahead=lookahead)


def reorder_capacity(config: RunConfig, n_stages: int) -> int:
    """Frames the reorder buffer may hold behind a gap: everything that can be in flight, and then some."""
    in_flight = (n_stages + 1) * (config.runtime.queue_size + 1) + config.restore.batch_size
    return max(64, 2 * in_flight)


def _frame_items(frames: Iterable[Frame], limit: int | None = None) -> Iterator[FrameItem]:
    for frame in itertools.islice(frames, limit):
        yield FrameItem(frame)


def with_late_gate(stages: Sequence[Stage], make_gate: Callable[[Stage], LateGate]) -> tuple[list[Stage], LateGate]:
    """``stages`` with the restorer (or annotator; else the last stage) wrapped in a ``LateGate``."""
    out = list(stages)
    names = [getattr(s, "name", "") for s in out]
    at = next((i for i, n in enumerate(names) if n in ("restore", "annotate")), len(out) - 1)
    gate = make_gate(out[at])
    out[at] = gate
    return out, gate


DRAIN_S = 10.0  # a live run stopped by a signal: at most this long for the frames in flight


def run(
    source: Source,
    sink: Sink,
    config: RunConfig | None = None,
    *,
    stages: Sequence[Stage] | None = None,
    progress: Progress | None = None,
    max_frames: int | None = None,
    fetch_progress: Callable[[int, int | None], None] | None = None,
    on_health: Callable[[str], None] | None = None,
) -> RunReport:
    """Process ``source`` into ``sink``; ``stages`` replaces ``build_stages`` (tests, benches).

    ``max_frames`` stops after the first that many frames (``bench pipeline``); a file's audio
    after them is still copied. The source is closed and the sink closed or aborted in every case.

    A live source (``source.live``; with the ``live`` preset's drop-oldest backpressure the
    graph's first queue drops the oldest frame rather than wait): ``config.live.max_latency_ms``
    wraps the restorer in a ``LateGate``, each frame's latency is measured, ``on_health(line)``
    is called every ``config.live.stats_every`` seconds, and a signal ends the stream as its end
    would (the frames in flight are encoded, the sink closed: a recording stays playable), kept
    in the report's ``live.stopped_by``.

    Raises InputError for a bad input, OutputError when the output cannot be written,
    ProcessingError when a stage fails, Interrupted on a signal (a file run); in every case the
    output is left as it was.
    """
    config = config or RunConfig()
    t0 = time.perf_counter()
    live = source.live
    try:
        info = source.info
        size = output_size(config, info)
        plans = sink.plan(size, info.pix_fmt)  # the encoders refuse bad settings now, not at frame 0
        if stages is None:
            stage_list = build_stages(config, info, fetch_progress=fetch_progress, provenance=not live)
        else:
            stage_list = list(stages)
        rgb = live or config.restore.upscale != 1 or config.annotate  # these frames are (or become) RGB
        in_flight = None if rgb else info.pix_fmt  # a file's frames are pictures of its own format
        memory = plan_memory(config, stage_list, plans, in_flight)
        runtime = dataclasses.replace(config.runtime, queue_size=memory.queue_size)
        # a live source's preset drops the oldest frame rather than wait; a pipe on standard input
        # may block instead (its writer waits, nothing is lost): the config says which
        dropped = DroppedIndices() if runtime.backpressure == "drop-oldest" or live else None
        latency = LatencyMeter() if live else None
        sinks = list(getattr(sink, "sinks", [sink]))
        if latency is not None and all(callable(getattr(s, "measure_latency", None)) for s in sinks):
            for s in sinks:  # they encode in threads of their own: they time each frame once it is sent
                s.measure_latency(latency)  # type: ignore[attr-defined]
            stage_latency = None
        else:
            stage_latency = latency  # write() encodes: timed when it returns
        gate = None
        graph_stages = stage_list
        if live and config.live.max_latency_ms is not None and stage_list:
            budget, policy, drops = config.live.max_latency_ms / 1000, config.live.late, dropped
            assert drops is not None
            graph_stages, gate = with_late_gate(
                stage_list, lambda inner: LateGate(inner, budget, policy, on_drop=drops.add)
            )
        monitor = None
        if live:
            assert latency is not None
            monitor = LiveMonitor(source, sinks, latency, gate)
        reorder = ReorderBuffer(capacity=reorder_capacity(config, len(stage_list)), dropped=dropped)
        log.info(
            "%s -> %s: %dx%d at %s fps, %s frames, stages: %s",
            source.name,
            sink.name,
            info.width,
            info.height,
            info.frame_rate,
            "live" if live else (info.frame_count if info.frame_count is not None else "?"),
            ", ".join(getattr(s, "name", type(s).__name__) for s in graph_stages) or "none (pass-through)",
        )
        if progress is not None:
            progress.start(info)
        try:
            sink.open(info, size, source.audio if live else source.audio_path, memory.encoder_lookahead)
            try:
                graph = Graph(
                    _frame_items(source.frames(memory.queue_size), max_frames),
                    [*graph_stages, reorder],
                    SinkStage(sink, stage_latency),
                    runtime,
                    on_drop=None if dropped is None else (lambda item: dropped.add(item.index)),
                )
                tick = _ticker(progress, monitor, on_health, config.live.stats_every)
                if monitor is not None:
                    monitor.graph = graph
                stats = graph.run(progress=tick, drain=source.stop if live else None, drain_s=DRAIN_S)
                if monitor is not None and graph.interruption is not None:
                    monitor.stopped_by = _stop_reason(graph.interruption)
                    log.warning(
                        "%s: stopped by %s; the output is complete to its last frame", sink.name, monitor.stopped_by
                    )
                sink.close()
            except BaseException:
                sink.abort()
                raise
            frames_out = sink.frames_written
        finally:
            if progress is not None:
                progress.close()
    finally:
        source.close()
    if stats.dropped:
        log.warning("%d frame(s) dropped by backpressure (%s)", stats.dropped, runtime.backpressure)
    stage_stats = {s.name: figures for s in graph_stages if (figures := s.stats())}
    source_stats = source.stats()
    if source_stats:
        stage_stats["source"] = source_stats
    return RunReport(
        input=source.name,
        output=sink.name,
        frames_in=stats.items_in,
        frames_out=frames_out,
        dropped=stats.dropped + (gate.dropped if gate is not None else 0),
        wall_s=time.perf_counter() - t0,  # probe, graph and the encoder's final flush
        width=info.width,
        height=info.height,
        frame_rate=str(info.frame_rate),
        frame_count=info.frame_count,
        graph=stats,
        config=config,
        stage_stats=stage_stats,
        memory=memory,
        live=None if monitor is None else monitor.totals(),
        artifacts={s.name: a for s in graph_stages if hasattr(s, "artifacts") and (a := s.artifacts())},
    )


def _stop_reason(exc: BaseException) -> str:
    """What stopped a drained live run: the signal's name (SIGTERM), else Ctrl-C."""
    signum = getattr(exc, "signum", None)
    if isinstance(signum, int):
        import signal

        return signal.Signals(signum).name
    return "SIGINT" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__


def _ticker(
    progress: Progress | None,
    monitor: LiveMonitor | None,
    on_health: Callable[[str], None] | None,
    every: float | None,
) -> Callable[[int], None] | None:
    """The graph's progress callback: the progress bar, and the health line every ``every`` seconds."""
    if monitor is None or on_health is None or every is None:
        return None if progress is None else progress.update
    next_at = time.monotonic() + every

    def tick(done: int) -> None:
        nonlocal next_at
        if progress is not None:
            progress.update(done)
        now = time.monotonic()
        if now >= next_at:
            next_at = max(next_at + every, now)
            on_health(monitor.line())

    return tick


def run_pipeline(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: RunConfig | None = None,
    *,
    stages: Sequence[Stage] | None = None,
    progress: Progress | None = None,
    max_frames: int | None = None,
    fetch_progress: Callable[[int, int | None], None] | None = None,
) -> RunReport:
    """``run`` from a file to a file: the main command's case."""
    config = config or RunConfig()
    return run(
        FileSource.from_config(input, config.io),
        FileSink(output, config.io),
        config,
        stages=stages,
        progress=progress,
        max_frames=max_frames,
        fetch_progress=fetch_progress,
    )
