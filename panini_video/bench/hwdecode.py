"""Decode on NVDEC through PyAV's CUDA hwaccel against FFmpeg's CPU decoder, alone and with the encode.

``bench io`` measures decode+encode with the CPU decoder only; the H200 has 7 NVDEC engines (and
no NVENC), so the question is whether moving the decode off the 16 cores speeds up the whole
transcode. Each measurement decodes the file to RGB (what the pipeline does with every frame);
``transcode`` also encodes it with the encoder the output's extension picks (the pipeline's own
plan, same options as ``bench io``). NVDEC frames come back to host memory (PyAV's default,
``is_hw_owned=False``); a decoder that cannot open NVDEC is reported as such, never silently
replaced by the CPU decoder (``allow_software_fallback=False``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import av

log = logging.getLogger(__name__)


def hwaccel_available() -> list[str]:
    """The hardware device types this FFmpeg build knows (``cuda`` for NVDEC)."""
    from av.codec.hwaccel import hwdevices_available

    return list(hwdevices_available())


def measure(path: Path, *, nvdec: bool, out: Path | None = None, frames: int | None = None) -> dict[str, Any]:
    """Frames per second of decoding ``path`` to RGB (and encoding to ``out`` when given).

    Returns ``{"decoder", "frames", "wall_s", "fps"}``, or ``{"decoder", "error"}`` when the
    decoder (NVDEC's device, say) cannot be opened.
    """
    kind = "nvdec" if nvdec else "cpu"
    kwargs: dict[str, Any] = {}
    if nvdec:
        from av.codec.hwaccel import HWAccel

        kwargs["hwaccel"] = HWAccel("cuda", allow_software_fallback=False)
    t = time.perf_counter()
    try:
        count = _run(path, out, frames, kwargs)
    except (av.FFmpegError, OSError, RuntimeError, ValueError) as exc:
        log.info("%s decode of %s failed", kind, path, exc_info=True)
        return {"decoder": kind, "error": f"{type(exc).__name__}: {exc}"}
    wall = time.perf_counter() - t
    return {"decoder": kind, "frames": count, "wall_s": wall, "fps": count / wall if wall > 0 else 0.0}


def _run(path: Path, out: Path | None, limit: int | None, kwargs: dict[str, Any]) -> int:
    count = 0
    with av.open(str(path), **kwargs) as inp:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        if kwargs and not vin.codec_context.is_hwaccel:
            raise RuntimeError("the decoder opened without the CUDA device")
        writer = _Writer(out, vin) if out is not None else None
        try:
            for vf in inp.decode(vin):
                image = vf.to_ndarray(format="rgb24")
                if writer is not None:
                    writer.write(image, vf.pts)
                count += 1
                if limit is not None and count >= limit:
                    break
        finally:
            if writer is not None:
                writer.close()
    return count


class _Writer:
    """The pipeline's encoder plan for ``out`` (the same settings ``bench io`` uses)."""

    def __init__(self, out: Path, vin: Any) -> None:
        from panini_video.config import IOConfig
        from panini_video.io.encoder import plan_encoder

        width, height = vin.codec_context.width, vin.codec_context.height
        plan = plan_encoder(out, IOConfig(), (width, height))
        self.size = (width, height)
        self.plan = plan
        self.container = av.open(str(out), "w", container_options=plan.container_options)
        self.stream = self.container.add_stream(plan.codec, rate=vin.average_rate or 25, options=dict(plan.options))
        self.stream.width, self.stream.height = plan.coded_size
        self.stream.pix_fmt = plan.pix_fmt
        self.stream.codec_context.time_base = vin.time_base
        self.stream.time_base = vin.time_base
        self.time_base = vin.time_base

    def write(self, image: Any, pts: int | None) -> None:
        import numpy as np

        if self.plan.padded:
            cw, ch = self.plan.coded_size
            image = np.pad(image, ((0, ch - self.size[1]), (0, cw - self.size[0]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, self.time_base
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        try:
            self.container.mux(self.stream.encode(None))
        finally:
            self.container.close()
