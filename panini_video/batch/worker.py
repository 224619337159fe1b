"""One batch worker: the models loaded once, then one file after another, each verified before it is committed.

A ``FileWorker`` holds the Panini-Net and the face detector for its whole life (the local loop
shares one among its threads, a Ray actor keeps one per actor); every file gets fresh stage
objects around those shared networks, since the stages keep per-file state (the tracker's
tracks, the DRE cache, the batchers and the frame window) that must never leak into the next
file. The networks are only read during inference, so threads may share them.

Writing one file: the pipeline writes a temporary file beside the output (the writer's own
temporary name, renamed into a second temporary name of ours when the encoder finished); the
frames of that file are counted by demuxing it, and only when they equal the frames decoded from
the input is it renamed over the output. A kill at any moment leaves temporary files (named by
the dead process, removed by the next run) and never a finished-looking output.

With ``io.verify`` (the archival preset) the output is then checked against its input by
``panini_video.verify`` (frames, timestamps, audio packets, and for a lossless codec every
sample outside the faces' paste regions). A file that fails is still renamed into place, so it
can be inspected (``panini-video verify IN OUT`` says exactly what differs), but its ledger row
is ``failed`` with ``verify: ...`` as the reason and it is not retried: the same settings would
make the same bytes. Only a ``done`` row vouches for an output.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panini_video import outputs
from panini_video.config import RunConfig
from panini_video.errors import (
    InputError,
    Interrupted,
    OutputError,
    PaniniError,
    ProcessingError,
    UsageError,
    WeightsError,
)
from panini_video.io import VideoInfo

log = logging.getLogger(__name__)

FrameCallback = Callable[[int, int | None], None]  # (frames done, frames announced by the header)


@dataclass(frozen=True, slots=True)
class FileJob:
    """One file to run: its ledger key (the input's path) and its output."""

    input: str
    output: str


@dataclass(frozen=True, slots=True)
class FileResult:
    """What running one file gave.

    ok: the output is complete, verified and in place. permanent: the failure is the file's own
    (not a video, corrupt, an output that cannot be written) and retrying cannot help. fatal: no
    file can succeed with these settings (weights missing): the batch stops.
    """

    job: FileJob
    ok: bool
    frames: int = 0
    faces: int | None = None
    seconds: float = 0.0
    output_size: int = 0
    error: str | None = None
    permanent: bool = False
    fatal: bool = False
    interrupted: bool = False
    worker: str = ""


class _StopGate:
    """The run's progress hook: forwards frame counts and stops the file when asked."""

    def __init__(self, stop: threading.Event | None, on_frames: FrameCallback | None) -> None:
        self.stop = stop
        self.on_frames = on_frames
        self.total: int | None = None

    def start(self, info: VideoInfo) -> None:
        self.total = info.frame_count
        if self.on_frames is not None:
            self.on_frames(0, self.total)

    def update(self, frames_done: int) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Interrupted("the batch was stopped")  # raised in the graph's waiting thread: it stops every stage
        if self.on_frames is not None:
            self.on_frames(frames_done, self.total)

    def close(self) -> None:
        pass


def count_video_frames(path: str | os.PathLike[str]) -> int:
    """Video packets of a file we wrote (one per frame: our encoders emit no empty packets)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size > 0)


def classify(exc: BaseException) -> tuple[bool, bool]:
    """(permanent, fatal) for an exception a file's run raised."""
    from panini_video.verify import VerificationError

    if isinstance(exc, VerificationError):  # deterministic output: a retry would fail the same way
        return True, False
    if isinstance(exc, WeightsError):
        return True, True
    if isinstance(exc, (InputError, UsageError)):
        return True, False
    if isinstance(exc, OutputError):
        return True, False
    return False, False


class FileWorker:
    """Runs files with the models of ``config`` loaded once (``load``, else on the first file).

    model, detector: already built networks to use (tests, benches); None loads them from
    ``config``. name: how the ledger and the progress display name this worker.
    """

    def __init__(self, config: RunConfig, *, model: Any = None, detector: Any = None, name: str = "local") -> None:
        self.config = config
        self.model = model
        self.detector = detector
        self.name = name
        self.weights_label: str | None = None
        self._loaded = False
        self._lock = threading.Lock()

    def load(self, fetch_progress: Callable[[int, int | None], None] | None = None) -> None:
        """Load the detector and the restorer now (a missing file is a WeightsNotFoundError, before any file)."""
        with self._lock:
            if self._loaded:
                return
            from panini_video.faces.stages import load_face_detector
            from panini_video.restore.executor import resolve_device

            config = self.config
            device = resolve_device(config.restore.device)
            if self.detector is None:
                self.detector = load_face_detector(config.detect, config.detect.device or str(device))
            if not config.annotate and self.model is None:
                from panini_video.models.serialize import weights_label_of
                from panini_video.restore.stage import load_restore_model

                self.model = load_restore_model(config.restore, device, fetch_progress=fetch_progress)
                self.weights_label = weights_label_of(config.restore.model)
            self._loaded = True

    def stages(self, info: VideoInfo) -> list[Any]:
        """Fresh stages for one file around the shared networks."""
        from panini_video.run.pipeline import build_stages

        detector = self.detector.with_settings() if hasattr(self.detector, "with_settings") else self.detector
        stages = build_stages(self.config, info, model=self.model, detector=detector)
        for stage in stages:
            if getattr(stage, "name", "") == "restore" and self.weights_label is not None:
                stage.weights = self.weights_label  # the file's label, not "given"
        return stages

    def process(
        self, job: FileJob, *, stop: threading.Event | None = None, on_frames: FrameCallback | None = None
    ) -> FileResult:
        """Run one file to its verified output; failures come back in the result, not raised.

        Raises nothing for a file's failure; an ``Interrupted`` (``stop`` set, or a signal) comes
        back as ``interrupted`` with the output untouched.
        """
        t0 = time.perf_counter()
        try:
            frames, faces, size = self._write(job, stop, on_frames)
        except Interrupted as exc:
            return FileResult(job, False, error=str(exc) or "interrupted", interrupted=True, worker=self.name)
        except ProcessingError as exc:
            cause = exc.__cause__
            if isinstance(cause, Interrupted):
                return FileResult(job, False, error=str(cause), interrupted=True, worker=self.name)
            return self._failure(job, exc, t0)
        except (PaniniError, OSError, RuntimeError, ValueError, MemoryError) as exc:
            return self._failure(job, exc, t0)
        return FileResult(
            job, True, frames=frames, faces=faces, seconds=time.perf_counter() - t0, output_size=size, worker=self.name
        )

    def _failure(self, job: FileJob, exc: BaseException, t0: float) -> FileResult:
        permanent, fatal = classify(exc)
        text = str(exc) or type(exc).__name__
        if not isinstance(exc, PaniniError):
            text = f"{type(exc).__name__}: {text}"
        log.info("%s failed: %s", job.input, text, exc_info=log.isEnabledFor(logging.DEBUG))
        return FileResult(
            job,
            False,
            seconds=time.perf_counter() - t0,
            error=text,
            permanent=permanent,
            fatal=fatal,
            worker=self.name,
        )

    def _write_report(self, report: Any, output: Path, verified: Any) -> None:
        """The output's provenance report beside it (``io.file_report``), written whole or not at all."""
        from panini_video.report import build_report, write_report

        path = output.with_name(f"{output.name}.report.{self.config.io.file_report}")
        made = None if verified is None else dataclasses.replace(verified, output=str(output)).to_dict()
        write_report(path, build_report(report, output_paths=[output], verification=made))

    def _write(
        self, job: FileJob, stop: threading.Event | None, on_frames: FrameCallback | None
    ) -> tuple[int, int | None, int]:
        from panini_video.run.pipeline import run
        from panini_video.run.sinks import FileSink
        from panini_video.run.sources import FileSource

        self.load()
        output = Path(job.output)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{output.parent}: cannot create the output folder ({e.strerror or e})") from e
        source = FileSource.from_config(job.input, self.config.io)
        temp = outputs.temp_path(output)
        try:
            stages = self.stages(source.info)
            report = run(
                source, FileSink(temp, self.config.io), self.config, stages=stages, progress=_StopGate(stop, on_frames)
            )
            written = count_video_frames(temp)
            if not (written == report.frames_out == report.frames_in) or written == 0:
                raise ProcessingError(
                    f"{job.input}: the output holds {written} frames, the input gave {report.frames_in}; not kept"
                )
            verified = None
            if self.config.io.verify:
                from panini_video.verify import verify_files

                verified = verify_files(job.input, temp, report.to_dict())
            if stop is not None and stop.is_set():
                raise Interrupted("the batch was stopped")
            size = temp.stat().st_size
            outputs.commit(temp, output)
        except BaseException:
            source.close()
            temp.unlink(missing_ok=True)
            raise
        if self.config.io.file_report != "none":
            self._write_report(report, output, verified)
        if verified is not None:
            from panini_video.verify import require_ok

            require_ok([dataclasses.replace(verified, output=str(output))])  # kept, but the row fails
        faces = report.stage_stats.get("restore", {}).get("faces")
        if faces is None:
            faces = report.stage_stats.get("track", {}).get("faces")
        return report.frames_out, faces, size
