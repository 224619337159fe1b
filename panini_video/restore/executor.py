"""The device executor: frames up, aligned crops through Panini-Net in batches, frames down.

Everything between the upload of a frame and the download of the restored frame stays on the
device: the alignment warp, the normalisation, the degradation codes, the network, the finite
check and the paste-back. On CUDA three streams overlap the work: uploads from pinned host
buffers (``h2d``), compute, and downloads into pinned buffers (``d2h``); nothing waits on the
device until a finished frame is read back, so the next batches are queued while one runs (the
restore stage keeps at least two in flight). On the CPU the same calls run in order, without
streams or pinned memory, and a frame's pixels are used in place.

Precision ("auto"): the fastest precision whose error stays within tolerance. ``bench model``
measured bf16 against fp32 on the same input at max |d| 0.039 and mean |d| 0.003 (MFR, output in
[-1, 1]: at most 5 grey levels, 0.4 on average), fp16 at 0.004 / 0.0004; both within the
tolerance we set (max 0.1, mean 0.01, about 13 and 1.3 grey levels). On CUDA: bf16 when the GPU
has it (Ampere and later), else fp16; bf16 has fp32's exponent range, so StyleGAN2's
demodulation cannot overflow as it can in fp16. On the CPU: bf16 when the CPU computes it
natively (AMX or AVX512-BF16: MFR 1.7x faster than fp32 on a 2-core Xeon with AMX), else fp32
(emulated bf16 is slower than fp32, and CPU fp16 slower still).
Reduced precision uses ``torch.autocast`` rather than casting the weights: autocast keeps the
reductions autocast knows to be sensitive (norms, softmax, sums) in fp32, and the weights stay
fp32 for the cache's mask figures. ``bench model`` measures the error of each precision.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from panini_video.config import BlendConfig
from panini_video.errors import UsageError
from panini_video.faces.align import warp_faces
from panini_video.faces.blend import paste_faces, paste_order, paste_region
from panini_video.io.picture import Picture
from panini_video.records import Face, FaceJob
from panini_video.restore import planes
from panini_video.restore.planes import DevicePlanes

log = logging.getLogger(__name__)

_TORCH_DTYPE = {1: torch.uint8, 2: torch.uint16}
ResolvedPrecision = Literal["fp32", "bf16", "fp16"]
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str | None) -> torch.device:
    """``None``: cuda when available, else cpu; a named cuda device must exist."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {name!r} asked for, but this torch sees no CUDA GPU; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise UsageError(f"device type {device.type!r} is not supported; use cpu or cuda")
    return device


def resolve_precision(precision: str, device: torch.device) -> ResolvedPrecision:
    """The precision "auto" stands for on ``device`` (see the module docstring); others as given."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision not in DTYPES:
        raise UsageError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")
    return precision  # type: ignore[return-value]


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX512-BF16, from Linux's cpu flags)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"amx_bf16", "avx512_bf16"} & set(flags))


class _PinnedPool:
    """Reusable page-locked host buffers by shape; a buffer is free again once its event is done."""

    def __init__(self) -> None:
        self._free: dict[tuple[Any, ...], list[tuple[Tensor, Any]]] = {}

    def get(self, shape: tuple[int, ...], dtype: torch.dtype = torch.uint8) -> Tensor:
        bucket = self._free.get((*shape, dtype), [])  # type: ignore[arg-type]
        for i, (buf, event) in enumerate(bucket):
            if event is None or event.query():
                del bucket[i]
                return buf
        return torch.empty(shape, dtype=dtype, pin_memory=True)

    def put(self, buf: Tensor, event: Any) -> None:
        bucket = self._free.setdefault((*buf.shape, buf.dtype), [])  # type: ignore[arg-type]
        if len(bucket) < 8:  # beyond a few per shape the frame size changed; let the rest go
            bucket.append((buf, event))


@dataclass
class Download:
    """A frame on its way back to the host: ``result()`` waits for it.

    It returns (H, W, 3) uint8 for an RGB frame, or a ``Picture`` for a picture's planes
    (``template``: the picture they came from, whose format and properties the new one takes).
    """

    image: Any = None  # set at once on the CPU
    pinned: Tensor | None = None
    event: Any = None
    pool: _PinnedPool | None = None
    flags_host: Tensor | None = None  # per-face flags copied back with the frame (host tensor)
    planes: list[Tensor] | None = None  # a picture's planes, pinned, on their way back
    template: Picture | None = None

    def flags(self) -> list[bool]:
        """The per-face flags sent with the frame (after ``result()`` on CUDA)."""
        if self.flags_host is None:
            return []
        if self.event is not None:
            self.event.synchronize()
        return [bool(f) for f in self.flags_host.tolist()]

    def ready(self) -> bool:
        return self.image is not None or self.event is None or bool(self.event.query())

    def result(self) -> Any:
        if self.image is None and self.planes is not None:
            assert self.template is not None
            self.event.synchronize()
            out = self.template.writable_copy(samples=False)
            for dst, src in zip(out.planes, self.planes, strict=True):
                dst[...] = src.numpy()
            self.image = out
            if self.pool is not None:
                for buf in self.planes:
                    self.pool.put(buf, None)
            self.planes = None
        if self.image is None:
            assert self.pinned is not None
            self.event.synchronize()
            self.image = self.pinned.numpy().copy()  # the pinned buffer goes back to the pool
            if self.pool is not None:
                self.pool.put(self.pinned, None)
            self.pinned = None
        return self.image


class DeviceExecutor:
    """Runs one model on one device: ``upload``, ``align``, ``codes``, ``restore``, ``compose``, ``download``.

    model: a PaniniNet (or anything with its ``config``, ``degradation_code``, ``dafi_masks`` and
    call signature), moved to ``device`` and put in eval mode here.
    compiled: run the generator's forward through ``torch.compile`` (the first batch of each new
    shape pays the compile, minutes for MFR); the DRE and masks stay eager. Off by default.
    channels_last: keep the 4-D weights and the input batch channels-last (NHWC), the layout the
    GPUs' matrix units read best; the output is the same function. Off by default.
    """

    def __init__(
        self,
        model: Any,
        device: torch.device,
        precision: str = "auto",
        *,
        compiled: bool = False,
        channels_last: bool = False,
    ) -> None:
        self.device = device
        self.precision = resolve_precision(precision, device)
        self.model = model.to(device).eval()
        self.channels_last = channels_last
        if channels_last:
            to_channels_last(self.model)
        self.compiled = compiled
        self._forward = torch.compile(self.model) if compiled else self.model
        self.in_size = int(model.config.in_size)
        self.out_size = int(model.config.out_size)
        self.uses_dre = bool(model.config.uses_dre)
        self.cuda = device.type == "cuda"
        if self.cuda:
            if self.precision == "fp32":
                # fp32 means fp32: CUDA's default TF32 convolutions (10-bit mantissa) would put the
                # result about 1e-3 from the CPU's, ten times the fp32 tolerance; bf16 is the fast path
                torch.backends.cudnn.allow_tf32 = False
                torch.backends.cuda.matmul.allow_tf32 = False
            self.h2d = torch.cuda.Stream(device)
            self.compute = torch.cuda.Stream(device)
            self.d2h = torch.cuda.Stream(device)
            self._upload_pool = _PinnedPool()
            self._download_pool = _PinnedPool()
            # The weights were copied on the default stream; compute must see them.
            self.compute.wait_stream(torch.cuda.current_stream(device))
        self.faces_restored = 0
        self.faces_failed = 0
        self.batches = 0
        log.info("restorer on %s, precision %s (asked: %s)", device, self.precision, precision)

    # Contexts -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def on_compute(self) -> Iterator[None]:
        """Run the enclosed device work on the compute stream (CUDA), without autograd."""
        stream = torch.cuda.stream(self.compute) if self.cuda else contextlib.nullcontext()
        with stream, torch.no_grad():
            yield

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=DTYPES[self.precision])

    # Host <-> device ------------------------------------------------------------------------------

    def upload(self, image: np.ndarray) -> Tensor:
        """An RGB uint8 (H, W, 3) frame as a (3, H, W) uint8 tensor on the device (no copy on the CPU)."""
        host = torch.from_numpy(np.ascontiguousarray(image))
        if not self.cuda:
            return host.permute(2, 0, 1)
        return self._to_device(host).permute(2, 0, 1)

    def upload_picture(self, pic: Picture) -> DevicePlanes:
        """A picture's planes on the device, ready to paste into (the picture itself stays as it is).

        On the CPU the planes are a copy of the picture in a new frame of its own (one copy per
        plane, no conversion), and the faces are pasted straight into that frame's buffers.
        """
        if not self.cuda:
            copy = pic.writable_copy()
            return DevicePlanes(
                [torch.from_numpy(v) for v in copy.planes], pic.format, pic.colour, *pic.size, host=copy
            )
        planes = [self._to_device(torch.from_numpy(view)) for view in pic.planes]  # strided rows: copied as they are
        return DevicePlanes(planes, pic.format, pic.colour, *pic.size)

    def _to_device(self, host: Tensor) -> Tensor:
        """A host tensor on the device through a pinned buffer, on the h2d stream; compute waits for it."""
        pinned = self._upload_pool.get(tuple(host.shape), host.dtype)
        pinned.copy_(host)
        with torch.cuda.stream(self.h2d):
            dev = pinned.to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self.h2d)
        self._upload_pool.put(pinned, event)
        self.compute.wait_event(event)
        dev.record_stream(self.compute)  # allocated on h2d, used on compute
        return dev

    def download(self, image: Tensor, flags: Tensor | None = None) -> Download:
        """Start copying a (3, H, W) uint8 frame back; the copy overlaps later batches on CUDA.

        flags: a small (N,) bool tensor (the faces' finite flags) that travels with the frame, so
        reading it later never waits on the compute stream (which by then runs later batches).
        """
        hwc = image.permute(1, 2, 0)
        if not self.cuda:
            return Download(image=hwc.contiguous().numpy(), flags_host=None if flags is None else flags.cpu())
        with torch.cuda.stream(self.compute):
            hwc = hwc.contiguous()
        (pinned,), flags_host, done = self._to_host([hwc], flags)
        return Download(pinned=pinned, event=done, pool=self._download_pool, flags_host=flags_host)

    def download_picture(self, dp: DevicePlanes, template: Picture, flags: Tensor | None = None) -> Download:
        """Start copying a picture's planes back (a new ``Picture`` like ``template``); see ``download``."""
        if not self.cuda:
            return Download(image=dp.host, flags_host=None if flags is None else flags.cpu())
        pinned, flags_host, done = self._to_host(dp.planes, flags)
        return Download(event=done, pool=self._download_pool, flags_host=flags_host, planes=pinned, template=template)

    def _to_host(self, tensors: Sequence[Tensor], flags: Tensor | None) -> tuple[list[Tensor], Tensor | None, Any]:
        """Copy device tensors (and the flags) into pinned buffers on the d2h stream, once compute has made them."""
        with torch.cuda.stream(self.compute):
            flags_dev = None if flags is None else flags.to(torch.uint8).contiguous()
            ready = torch.cuda.Event()
            ready.record(self.compute)
        pinned = [self._download_pool.get(tuple(t.shape), t.dtype) for t in tensors]
        flags_host = None if flags_dev is None else torch.empty(flags_dev.shape, dtype=torch.uint8, pin_memory=True)
        with torch.cuda.stream(self.d2h):
            self.d2h.wait_event(ready)
            for dst, src in zip(pinned, tensors, strict=True):
                src.record_stream(self.d2h)
                dst.copy_(src, non_blocking=True)
            if flags_dev is not None and flags_host is not None:
                flags_dev.record_stream(self.d2h)
                flags_host.copy_(flags_dev, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.d2h)
        return pinned, flags_host, done

    # Faces ---------------------------------------------------------------------------------------

    def align_picture(self, dp: DevicePlanes, affines: Sequence[np.ndarray]) -> Tensor:
        """Aligned crops (B, 3, in, in), float in [-1, 1], of faces of an uploaded picture (``restore.planes``)."""
        with self.on_compute():
            return planes.align_faces(dp, affines, self.in_size).div_(127.5).sub_(1.0)

    def compose_picture(
        self,
        dp: DevicePlanes,
        faces: Sequence[Face],
        affines: Sequence[np.ndarray],
        crops: Sequence[Tensor],
        restored: Sequence[Tensor],
        finite: Sequence[Tensor],
        blend: BlendConfig | None = None,
    ) -> list[tuple[int, int, int, int]]:
        """Paste the faces into the uploaded picture's planes, in place; the regions that may have changed.

        As ``compose``, but in the picture's own format: only each paste region is converted.
        """
        with self.on_compute():
            jobs = [
                FaceJob(-1, face, np.asarray(a, dtype=np.float64), (c + 1.0) * 127.5, (r + 1.0) * 127.5)
                for face, a, c, r in zip(faces, affines, crops, restored, strict=True)
            ]
            return planes.paste_faces(dp, jobs, finite, blend)

    # Faces (RGB frames) ----------------------------------------------------------------------------

    def align(self, image: Tensor, affines: Sequence[np.ndarray]) -> Tensor:
        """Aligned crops (B, 3, in, in), float in [-1, 1], of the faces of one uploaded frame."""
        with self.on_compute():
            crops = warp_faces(image, np.asarray(affines), self.in_size, out_dtype=torch.float32)
            return crops.div_(127.5).sub_(1.0)

    def codes(self, crops: Sequence[Tensor]) -> Tensor:
        """Degradation codes (B, C), float32, of aligned crops (each (3, in, in))."""
        with self.on_compute(), self._autocast():
            return self.model.degradation_code(torch.stack(list(crops))).float()

    def masks(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """DAFI masks of codes (for the DRE cache's figures)."""
        with self.on_compute():
            m1, m2 = self.model.dafi_masks(codes.to(self.device))
            return m1.float(), m2.float()

    def restore(self, crops: Sequence[Tensor], codes: Sequence[Tensor | None]) -> tuple[Tensor, Tensor]:
        """Restore a batch: (outputs (B, 3, out, out) in [-1, 1], finite (B,) bool).

        A face whose output has any non-finite value is reported in ``finite`` and its output is
        zeroed, so it cannot poison a paste; the caller gives it its original pixels back.
        """
        with self.on_compute():
            lq = torch.stack(list(crops))
            if self.channels_last:
                lq = lq.contiguous(memory_format=torch.channels_last)
            code = None if any(c is None for c in codes) else torch.stack(list(codes))  # type: ignore[arg-type]
            with self._autocast():
                out = self._forward(lq, code)
            out = out.float()
            finite = torch.isfinite(out).flatten(1).all(dim=1)
            out = torch.where(finite[:, None, None, None], out, torch.zeros((), device=out.device)).clamp_(-1.0, 1.0)
        self.batches += 1
        self.faces_restored += len(crops)
        return out, finite

    def compose(
        self,
        image: Tensor,
        faces: Sequence[Face],
        affines: Sequence[np.ndarray],
        crops: Sequence[Tensor],
        restored: Sequence[Tensor],
        finite: Sequence[Tensor],
        upscale: int = 1,
        blend: BlendConfig | None = None,
    ) -> Tensor:
        """The output frame (3, H*upscale, W*upscale) uint8: background enlarged, faces pasted back.

        crops: the aligned inputs in [-1, 1] (colour match reads them); restored: outputs in
        [-1, 1]; finite: per face, whether its output may be pasted. A face whose output was not
        finite keeps the (enlarged) input pixels; deciding that on the device (``torch.where``)
        spares a device-to-host wait per batch.
        """
        with self.on_compute():
            out = upscale_frame(image, upscale)
            jobs = [
                FaceJob(-1, face, np.asarray(a, dtype=np.float64), (c + 1.0) * 127.5, (r + 1.0) * 127.5)
                for face, a, c, r in zip(faces, affines, crops, restored, strict=True)
            ]
            flags = dict(zip(map(id, jobs), finite, strict=True))
            for job in paste_order(jobs):  # smallest face first, as the blend module does
                paste_guarded(out, job, flags[id(job)], upscale, blend)
            return out.round_().clamp_(0.0, 255.0).to(torch.uint8)


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """Every 4-D parameter and buffer of ``model`` in channels-last layout, in place.

    ``Module.to(memory_format=...)`` refuses the network: StyleGAN2's modulated weights are 5-D.
    Only the layout changes, never the values, so the output is the same function.
    """
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.ndim == 4:
                t.data = t.data.contiguous(memory_format=torch.channels_last)
    return model


def upscale_frame(image: Tensor, factor: int) -> Tensor:
    """A (3, H, W) frame as float 0-255, enlarged ``factor`` times with bicubic interpolation.

    Bicubic (a = -0.75, PyTorch's) on the device, clamped to 0-255 against its overshoot; an
    integer factor keeps the pixel grid: output pixel centres fall at exact input sub-positions.
    """
    frame = image.float()
    if factor == 1:
        return frame
    out = F.interpolate(frame[None], scale_factor=factor, mode="bicubic", align_corners=False)[0]
    return out.clamp_(0.0, 255.0)


def paste_guarded(out: Tensor, job: FaceJob, finite: Tensor, scale: int, blend: BlendConfig | None) -> None:
    """Paste one face into ``out`` (float, in place), only where ``finite`` (a 0-d bool tensor) holds.

    Only the face's paste region is copied: the blend module pastes into that sub-frame, with the
    face and affine moved by the region's corner, and ``torch.where`` keeps the old pixels when
    the output was not finite.
    """
    _, h, w = out.shape
    x0, y0, x1, y1 = paste_region(job.face, (w, h), scale)
    if x1 <= x0 or y1 <= y0:
        return
    dx, dy = x0 / scale, y0 / scale  # the region's corner in the frame the affine was made on
    shift = np.array([dx, dy, dx, dy], dtype=np.float32)
    face = dataclasses.replace(
        job.face,
        box=np.asarray(job.face.box, np.float32) - shift,
        landmarks=np.asarray(job.face.landmarks, np.float32) - shift[:2],
    )
    affine = np.array(job.affine, dtype=np.float64)
    affine[:, 2] += affine[:, :2] @ np.array([dx, dy])
    roi = out[:, y0:y1, x0:x1]
    pasted = paste_faces(roi, [dataclasses.replace(job, face=face, affine=affine)], blend, scale)
    roi.copy_(torch.where(finite, pasted, roi))
