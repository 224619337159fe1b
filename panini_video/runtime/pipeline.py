"""One run: reader -> face stages -> reorder -> writer, through the stage graph.

``build_stages`` is the factory of the face stages for a ``RunConfig``; ``run_pipeline`` wraps
them between the reader (source) and the writer (sink), runs the graph and returns a
``RunReport``. The writer only renames its temporary file onto the output when the whole graph
finished; any failure or interruption aborts it, so no output file appears.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from panini_video.config import RunConfig
from panini_video.errors import UsageError
from panini_video.io import VideoInfo, VideoReader, VideoWriter
from panini_video.io.encoder import X264_LOOKAHEAD, X264_PER_LOOKAHEAD, EncoderPlan, encoder_frames, plan_encoder
from panini_video.io.probe import probe
from panini_video.records import Frame, FrameItem
from panini_video.runtime.graph import Graph
from panini_video.runtime.memory import MemoryPlan, default_budget, plan_queues
from panini_video.runtime.reorder import DroppedIndices, ReorderBuffer
from panini_video.runtime.stage import Stage
from panini_video.runtime.stats import GraphStats

log = logging.getLogger(__name__)


class Progress(Protocol):
    """What ``run_pipeline`` reports progress to (the CLI's progress bar)."""

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

    @property
    def fps(self) -> float:
        return self.frames_out / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
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
) -> list[Stage]:
    """The face stages for ``config``, in graph order: detect, track, then restore or annotate.

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

        stages.append(RestoreStage(config.restore, config.blend, model=model, fetch_progress=fetch_progress))
    return stages


def output_size(config: RunConfig, info: VideoInfo) -> tuple[int, int]:
    """(width, height) of the frames the last stage hands to the writer."""
    up = config.restore.upscale
    return info.width * up, info.height * up


class WriterSink(Stage):
    """The graph's sink: encodes each frame (and muxes the audio up to it)."""

    name = "encode"

    def __init__(self, writer: VideoWriter) -> None:
        self.writer = writer

    def process(self, item: Any) -> Iterable[Any]:
        frame: Frame = item.frame if isinstance(item, FrameItem) else item
        self.writer.write(frame)
        return ()


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when two paths name the same file (an existing file, or the same resolved path)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()


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


def plan_memory(config: RunConfig, stages: Sequence[Stage], plan: EncoderPlan) -> MemoryPlan:
    """Queue depth and x264 look-ahead for ``config.runtime.max_memory`` (default: a quarter of RAM).

    The encoder is by far the largest holder (x264 medium keeps about 68 pictures), so when one
    frame per queue does not fit, its look-ahead is shortened first: compression loses a little,
    memory stays within the budget.
    """
    budget = config.runtime.max_memory or default_budget()
    frame_bytes = plan.size[0] * plan.size[1] * 3
    queues = len(stages) + 3  # the reader's, one before each stage, the reorder buffer's and the sink's
    cores = os.cpu_count() or 1
    fixed = frames_held(config, stages)
    preset = plan.options.get("preset")
    lookahead: int | None = None
    if plan.codec in ("libx264", "libx264rgb"):
        default = X264_LOOKAHEAD.get(preset or "medium", 40)
        room = budget / frame_bytes - fixed - queues - encoder_frames(plan.codec, preset, cores, 0)
        fits = max(0, int(room / X264_PER_LOOKAHEAD))
        if fits < default:
            lookahead = fits
            log.info("x264 look-ahead %d frames instead of %d, to fit the memory budget", fits, default)
    fixed += encoder_frames(plan.codec, preset, cores, lookahead)
    return plan_queues(budget, frame_bytes, queues, fixed, config.runtime.queue_size, encoder_lookahead=lookahead)


def reorder_capacity(config: RunConfig, n_stages: int) -> int:
    """Frames the reorder buffer may hold behind a gap: everything that can be in flight, and then some."""
    in_flight = (n_stages + 1) * (config.runtime.queue_size + 1) + config.restore.batch_size
    return max(64, 2 * in_flight)


def _frame_items(reader: VideoReader, limit: int | None = None) -> Iterator[FrameItem]:
    for frame in itertools.islice(reader, limit):
        yield FrameItem(frame)


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
    """Process ``input`` into ``output``; ``stages`` replaces ``build_stages`` (tests, benches).

    ``max_frames`` stops after the first that many frames (``bench pipeline``); the audio after
    them is still copied.

    Raises InputError for a bad input, OutputError when the output cannot be written,
    ProcessingError when a stage fails, Interrupted on Ctrl-C; in every case the output is
    left as it was.
    """
    config = config or RunConfig()
    t0 = time.perf_counter()
    if same_file(input, output):
        raise UsageError(f"the output is the input ({output}); choose another output path")
    info = probe(input)
    size = output_size(config, info)
    plan = plan_encoder(Path(output), config.io, size)  # the encoder refuses bad settings now, not at frame 0
    stage_list = build_stages(config, info, fetch_progress=fetch_progress) if stages is None else list(stages)
    memory = plan_memory(config, stage_list, plan)
    runtime = dataclasses.replace(config.runtime, queue_size=memory.queue_size)
    with VideoReader(input, threads=config.io.decode_threads, queue_size=memory.queue_size, info=info) as reader:
        dropped = DroppedIndices() if config.runtime.backpressure == "drop-oldest" else None
        reorder = ReorderBuffer(capacity=reorder_capacity(config, len(stage_list)), dropped=dropped)
        log.info(
            "%s -> %s: %dx%d at %s fps, %s frames, stages: %s",
            input,
            output,
            info.width,
            info.height,
            info.frame_rate,
            info.frame_count if info.frame_count is not None else "?",
            ", ".join(getattr(s, "name", type(s).__name__) for s in stage_list) or "none (pass-through)",
        )
        if progress is not None:
            progress.start(info)
        try:
            with VideoWriter(
                output, info, config.io, size=None if size == info.size else size, lookahead=memory.encoder_lookahead
            ) as writer:
                graph = Graph(
                    _frame_items(reader, max_frames),
                    [*stage_list, reorder],
                    WriterSink(writer),
                    runtime,
                    on_drop=None if dropped is None else (lambda item: dropped.add(item.index)),
                )
                stats = graph.run(progress=None if progress is None else progress.update)
                frames_out = writer.frames_written
        finally:
            if progress is not None:
                progress.close()
    if stats.dropped:
        log.warning("%d frame(s) dropped by backpressure (%s)", stats.dropped, config.runtime.backpressure)
    return RunReport(
        input=str(input),
        output=str(output),
        frames_in=stats.items_in,
        frames_out=frames_out,
        dropped=stats.dropped,
        wall_s=time.perf_counter() - t0,  # probe, graph and the encoder's final flush
        width=info.width,
        height=info.height,
        frame_rate=str(info.frame_rate),
        frame_count=info.frame_count,
        graph=stats,
        config=config,
        stage_stats={s.name: figures for s in stage_list if (figures := s.stats())},
        memory=memory,
    )
