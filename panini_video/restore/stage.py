"""RestoreStage: align, batch, restore and paste faces on the device, frames out in order.

Design: one stage does the whole device part (align -> DRE -> Panini-Net -> paste -> enlarge)
rather than handing restored crops to a separate blend stage. A frame then crosses the bus twice
(up once, down once) and crops never leave the device; a separate blend stage would either
download every crop and paste on the CPU (the peers' bottleneck) or need the frame on the device
a second time. The price is that this stage's thread runs the paste too; on CUDA that is only
kernel launches, the device does the work asynchronously. ``faces.stages.BlendStage`` stays for
pipelines that restore elsewhere; it must not follow this stage (the jobs this stage emits carry
no crops, so it would paste nothing anyway).

Per frame: upload, align every face (one warp call), ask the DRE cache which code each face
gets; faces whose code needs the DRE queue for a DRE batch, then wait until the cache has their
track's code (the warmup mean needs K frames), then queue for a generator batch. Frames wait in
a window until all their faces are pasted and the frame is downloaded, and leave in arrival
order. Emitted items describe the output frame: with ``--upscale N`` the frame is N times larger
and the faces' boxes, landmarks and affines are scaled to it.
"""

from __future__ import annotations

import array
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from panini_video.config import BlendConfig, RestoreConfig
from panini_video.download import ProgressCallback
from panini_video.errors import ProcessingError
from panini_video.faces.align import alignment_matrix, rescale_affine
from panini_video.faces.blend import paste_region
from panini_video.records import Face, FaceJob, Frame, FrameItem
from panini_video.restore.batcher import Batcher, FrameWindow
from panini_video.restore.dre_cache import CodeTicket, DreCache
from panini_video.restore.executor import DeviceExecutor, Download, resolve_device
from panini_video.restore.planes import DevicePlanes
from panini_video.restore.tracklog import TrackLog
from panini_video.runtime.stage import Stage

log = logging.getLogger(__name__)

PASTE_REGION_COLUMNS = ("frame", "x0", "y0", "x1", "y1")  # stats' paste regions: output pixels, end exclusive


@dataclass(eq=False)
class _Job:
    """One face on its way through the device."""

    entry: _Entry
    face: Face
    affine: np.ndarray
    crop: Tensor
    ticket: CodeTicket
    restored: Tensor | None = None
    finite: Tensor | None = None


@dataclass(eq=False)
class _Entry:
    """One frame in flight."""

    item: FrameItem
    image: Tensor | None = None  # the uploaded RGB frame (None: no device work needed, or a picture)
    picture: DevicePlanes | None = None  # the uploaded picture's planes (frames that are a ``Picture``)
    jobs: list[_Job] = field(default_factory=list)
    unaligned: list[Face] = field(default_factory=list)  # faces whose landmarks gave no alignment
    remaining: int = 0
    download: Download | None = None


def load_restore_model(
    config: RestoreConfig, device: torch.device, *, fetch_progress: ProgressCallback | None = None
) -> Any:
    """The Panini-Net of ``config.model`` (variant name or file), fetched on first use when ``config.download``.

    WeightsNotFoundError says how to get the weights when they are neither cached nor downloadable.
    """
    from panini_video.models import load_model
    from panini_video.models.fetch import ensure_model

    ensure_model(config.model, download=config.download, progress=fetch_progress)
    return load_model(config.model, device=device)


class RestoreStage(Stage):
    """Restores the faces of every frame with Panini-Net, batched across frames and tracks.

    Args:
        config: model, device, precision, batch size, max wait, DRE mode/warmup/EMA, upscale.
        blend: how faces are pasted back (feather, colour match).
        model: an already built model (tests, benches); None loads ``config.model`` (downloading
            the official weights on first use when ``config.download``), raising
            WeightsNotFoundError (with how to get the weights) before the graph starts.
        clock: time source of the max wait (tests).
        fetch_progress: called with the bytes done and total while weights download.
        provenance: keep every paste region (the stats, for verify) and each track's log (the
            report); False for a run with no end (live), where they would grow without bound.
    """

    name = "restore"

    def __init__(
        self,
        config: RestoreConfig,
        blend: BlendConfig | None = None,
        model: Any = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        fetch_progress: ProgressCallback | None = None,
        provenance: bool = True,
    ) -> None:
        self.config = config
        self.provenance = provenance
        self.blend = blend or BlendConfig()
        device = resolve_device(config.device)
        self.weights = "given"  # a model handed in (tests, benches)
        if model is None:
            model = load_restore_model(config, device, fetch_progress=fetch_progress)
            from panini_video.models.serialize import weights_label_of

            self.weights = weights_label_of(config.model)  # trained, or random with its seed
        self.executor = DeviceExecutor(model, device, config.precision)
        self.cache = DreCache(
            config.dre_mode,
            config.dre_warmup,
            config.dre_ema,
            uses_dre=self.executor.uses_dre,
            masks=lambda codes: self.executor.masks(codes),
        )
        wait_s = config.max_wait_ms / 1000.0
        self.dre_batches: Batcher[_Job] = Batcher(config.batch_size, wait_s, clock)
        self.gen_batches: Batcher[_Job] = Batcher(config.batch_size, wait_s, clock)
        self._waiting: deque[_Job] = deque()  # DRE done (or not needed), code not known yet
        # Enough frames for a track's warmup to close and two batches to be queued behind it.
        capacity = config.dre_warmup + 2 * config.batch_size + 2
        self.window: FrameWindow[_Entry] = FrameWindow(capacity, self._is_done, self._wait)
        self.frames = 0
        self.faces = 0
        self.faces_failed = 0
        # (frame, x0, y0, x1, y1) of every region pasting may have changed, flat: the stats and verify read it
        self.paste_regions = array.array("i")
        self.track_log = TrackLog()  # each track's range, sizes and sharpest face (the provenance report)

    # Stage protocol ---------------------------------------------------------------------------------

    def process(self, item: Any) -> Iterable[FrameItem]:
        if isinstance(item, Frame):
            item = FrameItem(item)
        self.window.add(self._admit(item))
        self._pump(force=False)
        out = self.window.release()
        if self.window.full:
            self._pump(force=True)
            out += self.window.release_over_capacity()
        return [self._emit(e) for e in out]

    def flush(self) -> Iterable[FrameItem]:
        with self.executor.on_compute():
            self.cache.flush()
        self._pump(force=True)
        return [self._emit(e) for e in self.window.release(block=True)]

    def close(self) -> None:
        self._waiting.clear()

    # Frames in --------------------------------------------------------------------------------------

    def _admit(self, item: FrameItem) -> _Entry:
        entry = _Entry(item)
        faces = list(item.faces)
        with self.executor.on_compute():
            tickets = self.cache.begin_frame(item.index, [f.track for f in faces], item.scene_cut)
        native = not item.frame.is_rgb and self.config.upscale == 1
        if faces and native:
            entry.picture = self.executor.upload_picture(item.frame.image)  # type: ignore[arg-type]
        elif faces or self.config.upscale != 1:  # --upscale enlarges the whole frame in RGB
            entry.image = self.executor.upload(item.frame.rgb())
        aligned: list[tuple[Face, np.ndarray, CodeTicket]] = []
        for face, ticket in zip(faces, tickets, strict=True):
            try:
                aligned.append((face, alignment_matrix(face.landmarks, self.executor.in_size), ticket))
            except ValueError:  # degenerate landmarks: keep the original pixels
                log.debug("frame %d: face %r cannot be aligned", item.index, face)
                entry.unaligned.append(face)
        if aligned:
            if entry.picture is not None:
                crops = self.executor.align_picture(entry.picture, [a for _, a, _ in aligned])
            else:
                assert entry.image is not None
                crops = self.executor.align(entry.image, [a for _, a, _ in aligned])
            for i, (face, affine, ticket) in enumerate(aligned):
                job = _Job(entry, face, affine, crops[i], ticket)
                entry.jobs.append(job)
                if ticket.needs_dre:
                    self.dre_batches.add(job)
                else:
                    self._waiting.append(job)
        entry.remaining = len(entry.jobs)
        if not entry.remaining:
            self._finish(entry)
        return entry

    # Batches ----------------------------------------------------------------------------------------

    def _pump(self, force: bool) -> None:
        """Run the DRE and generator batches that are due (all of them when ``force``)."""
        for batch in self.dre_batches.take(force):
            codes = self.executor.codes([j.crop for j in batch])
            with self.executor.on_compute():
                self.cache.supply([j.ticket for j in batch], codes)
            self._waiting.extend(batch)
        still: deque[_Job] = deque()
        for job in self._waiting:
            (self.gen_batches.add if job.ticket.ready else still.append)(job)
        self._waiting = still
        for batch in self.gen_batches.take(force):
            out, finite = self.executor.restore([j.crop for j in batch], [j.ticket.code for j in batch])
            for i, job in enumerate(batch):
                job.restored, job.finite = out[i], finite[i]
                job.entry.remaining -= 1
                if job.entry.remaining == 0:
                    self._finish(job.entry)

    def _finish(self, entry: _Entry) -> None:
        """All faces of a frame are back: compose it on the device and start its download."""
        jobs = entry.jobs
        if entry.picture is None and entry.image is None:
            entry.download = Download(image=entry.item.frame.image)
            return
        faces = (
            [j.face for j in jobs],
            [j.affine for j in jobs],
            [j.crop for j in jobs],
            [j.restored for j in jobs],
            [j.finite for j in jobs],
        )
        if entry.picture is not None:
            regions = self.executor.compose_picture(entry.picture, *faces, self.blend)  # type: ignore[arg-type]
            if self.provenance:
                for x0, y0, x1, y1 in regions:
                    self.paste_regions.extend((entry.item.index, x0, y0, x1, y1))
            with self.executor.on_compute():
                flags = torch.stack([j.finite for j in jobs]) if jobs else None  # type: ignore[misc]
            entry.download = self.executor.download_picture(entry.picture, entry.item.frame.image, flags)  # type: ignore[arg-type]
            entry.picture = None
            self._free_jobs(jobs)
            return
        assert entry.image is not None
        composed = self.executor.compose(entry.image, *faces, self.config.upscale, self.blend)  # type: ignore[arg-type]
        with self.executor.on_compute():
            flags = torch.stack([j.finite for j in jobs]) if jobs else None  # type: ignore[misc]
        entry.download = self.executor.download(composed, flags)
        entry.image = None
        self._free_jobs(jobs)
        if self.config.upscale == 1 and self.provenance:
            for j in jobs:
                x0, y0, x1, y1 = paste_region(j.face, entry.item.frame.size)
                self.paste_regions.extend((entry.item.index, x0, y0, x1, y1))

    @staticmethod
    def _free_jobs(jobs: list[_Job]) -> None:
        for job in jobs:  # the device memory can go; the flags come back with the frame
            job.crop = job.restored = job.finite = None  # type: ignore[assignment]

    def _is_done(self, entry: _Entry) -> bool:
        return entry.download is not None and entry.download.ready()

    def _wait(self, entry: _Entry) -> None:
        if entry.download is None:
            self._pump(force=True)
        if entry.download is None:
            raise ProcessingError(
                f"frame {entry.item.index} still waits for {entry.remaining} face(s) after forcing every batch"
            )
        entry.download.result()

    # Frames out -------------------------------------------------------------------------------------

    def _emit(self, entry: _Entry) -> FrameItem:
        assert entry.download is not None
        image = entry.download.result()
        item = entry.item
        flags = entry.download.flags() if entry.jobs else []  # no wait on the compute stream
        up = self.config.upscale
        jobs = [
            FaceJob(item.index, _scaled_face(j.face, up), _scaled_affine(j.affine, up), None, failed=not ok)
            for j, ok in zip(entry.jobs, flags, strict=True)
        ]
        jobs += [FaceJob(item.index, _scaled_face(f, up), np.zeros((2, 3)), None, failed=True) for f in entry.unaligned]
        failed = sum(j.failed for j in jobs)
        if failed:
            log.warning("frame %d: %d face(s) kept their original pixels (restoration failed)", item.index, failed)
        self.frames += 1
        self.faces += len(jobs)
        self.faces_failed += failed
        frame = item.frame if image is item.frame.image else dataclasses.replace(item.frame, image=image)
        for j in jobs if self.provenance else ():
            if not j.failed and j.face.track >= 0 and up == 1:
                self.track_log.add(item.index, j.face, item.frame, frame)
        faces = item.faces if up == 1 else tuple(_scaled_face(f, up) for f in item.faces)
        return dataclasses.replace(item, frame=frame, faces=faces, jobs=tuple(jobs))

    # Figures ----------------------------------------------------------------------------------------

    def artifacts(self) -> dict[str, Any]:
        """What the report shows beyond the figures: each track with its sharpest face's thumbnails."""
        return {"tracks": self.track_log.tracks()}

    def stats(self) -> dict[str, Any]:
        """What this stage did, for ``--stats-json``: faces, failures, batches, and each track's code."""
        with self.executor.on_compute():
            tracks = [dataclasses.asdict(r) for r in self.cache.records()]
        return {
            "weights": self.weights,  # "random weights, seed N" for `weights init` files
            "device": str(self.executor.device),
            "precision": self.executor.precision,
            "model_in": self.executor.in_size,
            "model_out": self.executor.out_size,
            "frames": self.frames,
            "faces": self.faces,
            "faces_failed": self.faces_failed,
            "batches": self.gen_batches.batches,
            "batch_size_mean": self.gen_batches.mean_size,
            "dre_batches": self.dre_batches.batches,
            "dre_mode": self.config.dre_mode,
            "tracks": tracks,
            **(
                {
                    "paste_regions": {
                        "columns": list(PASTE_REGION_COLUMNS),
                        "rows": np.asarray(self.paste_regions, dtype=np.int64).reshape(-1, 5).tolist(),
                    }
                }
                if self.provenance
                else {}
            ),
        }


def _scaled_face(face: Face, scale: int) -> Face:
    """``face`` in the coordinates of its frame enlarged ``scale`` times (pixel centres kept)."""
    if scale == 1:
        return face
    off = 0.5 * (scale - 1)
    return dataclasses.replace(
        face,
        box=(np.asarray(face.box, np.float32) * scale + off).astype(np.float32),
        landmarks=(np.asarray(face.landmarks, np.float32) * scale + off).astype(np.float32),
    )


def _scaled_affine(affine: np.ndarray, scale: int) -> np.ndarray:
    return affine if scale == 1 else rescale_affine(affine, src_scale=float(scale))
