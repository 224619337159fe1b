"""``panini-video bench model``: Panini-Net throughput, peak memory and reduced-precision error.

The weights are random: the cost of a forward does not depend on their values. For every batch
size and dtype it reports faces/s, the peak memory of the forward, the achieved TFLOP/s against
the FLOPs of one face (spec section 6.2 for mfr/sr, counted with FlopCounterMode otherwise), and
for bf16/fp16 the max and mean absolute difference from the fp32 output of the same input.
``--compile`` adds rows of the same network through ``torch.compile`` (mode "compiled"): the
first forward of each new shape compiles, and is reported apart (``first_s``), never timed with
the rest; ``--channels-last`` keeps weights and input in NHWC for every row.

Peak memory is what the forwards (warm-up included) take beyond what was held before them, the
weights excluded: on CUDA from the caching allocator's ``max_memory_allocated``, on the CPU the
growth of the process's resident set (VmHWM after a reset, see ``_reset_rss_peak``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import gc
import logging
import os
import platform
import resource
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from panini_video.bench.report import write_json
from panini_video.errors import UsageError
from panini_video.models.config import VARIANTS, PaniniConfig

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# GFLOPs per face at batch 1 (OFFICIAL_ARCHITECTURE.md section 6.2, convolutions and matmuls).
SPEC_GFLOP = {"mfr": 448.28, "sr": 321.82}
MEMORY_MARGIN = 0.8  # a CPU run may use this share of the available memory


@dataclass
class Row:
    """One measured (or skipped) combination."""

    variant: str
    device: str
    dtype: str
    batch: int
    faces_per_s: float | None = None
    ms_per_batch: float | None = None
    peak_mib: float | None = None
    tflops: float | None = None
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    mode: str = "eager"  # or "compiled" (torch.compile)
    channels_last: bool = False
    first_s: float | None = None  # the first forward (a compiled row's compile included)
    note: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="mfr")
    parser.add_argument("--batch", default="1,8", help="comma-separated batch sizes (default 1,8)")
    parser.add_argument("--dtype", default="fp32,bf16,fp16", help="comma-separated: fp32, bf16, fp16")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda[:N]")
    parser.add_argument("--iters", type=int, default=5, help="timed forwards per combination")
    parser.add_argument("--warmup", type=int, default=1, help="untimed forwards first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mode", default="eager", help="comma-separated: eager, compiled (torch.compile); default eager"
    )
    parser.add_argument("--compile", action="store_true", help="same as --mode eager,compiled")
    parser.add_argument("--channels-last", action="store_true", help="weights and input in NHWC layout")


def run(args: argparse.Namespace) -> int:
    batches = _int_list(args.batch, "--batch")
    dtypes = _names(args.dtype)
    modes = _modes("eager,compiled" if args.compile else args.mode)
    if args.iters < 1 or args.warmup < 0:
        raise UsageError("--iters must be at least 1 and --warmup at least 0")
    device = torch.device(args.device)
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device must be cpu or cuda[:N], got {args.device!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available to this torch build")
    result = bench(
        args.variant,
        batches,
        dtypes,
        device,
        iters=args.iters,
        warmup=args.warmup,
        seed=args.seed,
        modes=modes,
        channels_last=args.channels_last,
    )
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
    return 0


def bench(
    variant: str,
    batches: list[int],
    dtypes: list[str],
    device: torch.device,
    *,
    iters: int = 5,
    warmup: int = 1,
    seed: int = 0,
    modes: tuple[str, ...] | list[str] = ("eager",),
    channels_last: bool = False,
) -> dict[str, object]:
    """Measure every (mode, batch, dtype) combination; returns the figures with the machine described.

    One model per dtype (and one compiled wrapper of it) serves every batch size: a compiled
    network then compiles once per shape family rather than once per row, and stays under
    dynamo's recompile limit (beyond it torch silently runs eager).
    """
    from panini_video.models.panini import PaniniNet
    from panini_video.restore.executor import to_channels_last

    config = VARIANTS[variant]
    torch.manual_seed(seed)
    base = PaniniNet(config).eval()
    gflop, gflop_source = _gflop_per_face(variant, base, config)
    base = base.to(device)
    if channels_last:
        to_channels_last(base)
    rows: list[Row] = []
    per_face_bytes: dict[str, float] = {}  # CPU: peak of the largest batch run so far, per face
    models: dict[tuple[str, str], torch.nn.Module] = {}
    for mode in modes:
        for batch in batches:
            g = torch.Generator().manual_seed(seed + batch)
            x = (torch.rand(batch, 3, config.in_size, config.in_size, generator=g) * 2 - 1).to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            _measure_batch(
                base, models, rows, variant, device, mode, batch, x, dtypes, per_face_bytes, iters, warmup, gflop
            )
            for row in rows[-len(dtypes) :]:
                row.channels_last = channels_last
    return {
        "bench": "model",
        "variant": variant,
        "gflop_per_face": gflop,
        "gflop_source": gflop_source,
        "iters": iters,
        "warmup": warmup,
        "modes": list(modes),
        "channels_last": channels_last,
        "machine": machine(device),
        "rows": [asdict(r) for r in rows],
    }


def _model_for(base: torch.nn.Module, models: dict[tuple[str, str], torch.nn.Module], dtype: str, mode: str) -> Any:
    """The network in ``dtype`` (a copy of ``base`` but for fp32), compiled for mode "compiled"; made once."""
    key = (dtype, mode)
    if key not in models:
        if mode == "compiled":
            models[key] = torch.compile(_model_for(base, models, dtype, "eager"))
        else:
            models[key] = base if dtype == "fp32" else copy.deepcopy(base).to(DTYPES[dtype])
    return models[key]


def _measure_batch(
    base: torch.nn.Module,
    models: dict[tuple[str, str], torch.nn.Module],
    rows: list[Row],
    variant: str,
    device: torch.device,
    mode: str,
    batch: int,
    x: torch.Tensor,
    dtypes: list[str],
    per_face_bytes: dict[str, float],
    iters: int,
    warmup: int,
    gflop: float,
) -> None:
    """The rows of one input batch, every dtype, appended to ``rows``."""
    reference: torch.Tensor | None = None
    for name in dtypes:
        row = Row(variant, str(device), name, batch, mode=mode)
        rows.append(row)
        skip = _skip_reason(device, name, batch, per_face_bytes.get(name))
        if skip:
            row.note = skip
            continue
        if name != "fp32" and reference is None:
            reference = _forward_once(base, x)  # fp32 eager output of this input, untimed
        model = _model_for(base, models, name, mode)
        try:
            # A compiled row always warms up once: the compile must stay out of the timing.
            out, seconds, peak, first = _measure(model, x.to(DTYPES[name]), iters, max(warmup, mode == "compiled"))
        except Exception as exc:  # OOM, an op without this dtype, or a compile failure: a row, not a crash
            row.note = f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            log.info("bench model %s batch %d %s %s failed", variant, batch, name, mode, exc_info=True)
            continue
        row.first_s = first
        row.faces_per_s = batch * iters / seconds
        row.ms_per_batch = 1000 * seconds / iters
        row.peak_mib = peak / 2**20 if peak is not None else None
        row.tflops = gflop * row.faces_per_s / 1000
        if peak is not None and device.type == "cpu":
            per_face_bytes[name] = max(per_face_bytes.get(name, 0.0), peak / batch)
        if name == "fp32" and mode == "eager":
            reference = out.float()
        elif reference is not None:
            diff = (out.float() - reference).abs()
            row.max_abs_diff, row.mean_abs_diff = float(diff.max()), float(diff.mean())
            if not torch.isfinite(out).all():
                row.note = "non-finite outputs"
        elif name == "fp32":  # compiled fp32 against eager fp32
            reference = _forward_once(base, x)
            diff = (out.float() - reference).abs()
            row.max_abs_diff, row.mean_abs_diff = float(diff.max()), float(diff.mean())
        if device.type == "cpu" and name == "fp16":
            row.note = row.note or "fp16 on CPU: slow kernels, for error figures only"
        del out


def _gflop_per_face(variant: str, model: torch.nn.Module, config: PaniniConfig) -> tuple[float, str]:
    if variant in SPEC_GFLOP:
        return SPEC_GFLOP[variant], "OFFICIAL_ARCHITECTURE.md 6.2"
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, config.in_size, config.in_size)
    counter = FlopCounterMode(display=False)
    with counter:  # grad enabled: FlopCounterMode's module tracker hooks into autograd
        model(x)
    return counter.get_total_flops() / 1e9, "FlopCounterMode, batch 1"


def _forward_once(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x).float()


def _measure(
    model: Any, x: torch.Tensor, iters: int, warmup: int
) -> tuple[torch.Tensor, float, int | None, float | None]:
    """(last output, seconds for ``iters`` forwards, peak bytes of the forwards or None, first forward's s)."""
    cuda = x.device.type == "cuda"
    # The peak is taken over the warm-up too: afterwards the allocators reuse what it mapped.
    if cuda:
        torch.cuda.synchronize(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        before: int | None = torch.cuda.memory_allocated(x.device)
    else:
        before = _reset_rss_peak()
    first: float | None = None
    with torch.inference_mode():
        for i in range(warmup):
            t = time.perf_counter()
            model(x)
            if i == 0:
                if cuda:
                    torch.cuda.synchronize(x.device)
                first = time.perf_counter() - t
        if cuda:
            torch.cuda.synchronize(x.device)
        start = time.perf_counter()
        for _ in range(iters):
            out = model(x)
        if cuda:
            torch.cuda.synchronize(x.device)
        seconds = time.perf_counter() - start
    if cuda:
        peak: int | None = torch.cuda.max_memory_allocated(x.device) - (before or 0)
    else:
        hwm = _proc_status_kib("VmHWM")
        peak = (hwm * 1024 - before) if hwm is not None and before is not None else None
    return out, seconds, peak, first


def _reset_rss_peak() -> int | None:
    """Reset the kernel's peak-RSS mark (VmHWM) and return the current RSS in bytes, if possible.

    ``ru_maxrss`` cannot be reset and tracemalloc does not see torch's allocator; writing ``5`` to
    ``/proc/self/clear_refs`` resets VmHWM to the current RSS (Linux 4.0+). glibc keeps freed heap
    mapped, so it is trimmed first; the figure is the growth of RSS during the forwards.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back so the baseline is honest
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    rss = _proc_status_kib("VmRSS")
    return rss * 1024 if rss is not None else None


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _skip_reason(device: torch.device, dtype: str, batch: int, per_face: float | None) -> str:
    if dtype == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "skipped: this GPU has no bf16"
    if device.type == "cpu" and per_face is not None:
        available = _meminfo_bytes("MemAvailable")
        need = per_face * batch
        if available is not None and need > MEMORY_MARGIN * available:
            return f"skipped: needs about {need / 2**30:.1f} GiB, {available / 2**30:.1f} GiB available"
    return ""


def _meminfo_bytes(field: str) -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine(device: torch.device) -> dict[str, object]:
    """What the figures were measured on."""
    info: dict[str, object] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu": _cpu_name(),
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def format_table(result: dict[str, object]) -> str:
    """The rows as an aligned text table, machine and FLOP source above it."""
    m = result["machine"]
    assert isinstance(m, dict)
    where = m.get("gpu") or f"{m['cpu']} ({m['torch_threads']} threads)"
    head = (
        f"Panini-Net {result['variant']}: {result['gflop_per_face']:.2f} GFLOP/face ({result['gflop_source']}); "
        f"{where}; torch {m['torch']}"
    )
    cols = ["dtype", "batch", "faces/s", "ms/batch", "peak MiB", "TFLOP/s", "max|d|", "mean|d|", "mode", "note"]
    lines = [cols]
    rows = result["rows"]
    assert isinstance(rows, list)
    for r in rows:
        lines.append(
            [
                r["dtype"],
                str(r["batch"]),
                _num(r["faces_per_s"], ".3g"),
                _num(r["ms_per_batch"], ".1f"),
                _num(r["peak_mib"], ".0f"),
                _num(r["tflops"], ".3f"),
                _num(r["max_abs_diff"], ".2e"),
                _num(r["mean_abs_diff"], ".2e"),
                r.get("mode", "eager") + (" NHWC" if r.get("channels_last") else ""),
                r["note"],
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(cols))]
    body = [
        "  ".join(
            c.rjust(w) if 0 < i < len(cols) - 1 else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    ]
    return "\n".join([head, *body])


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise UsageError(f"{flag} takes comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise UsageError(f"{flag} takes positive integers, got {text!r}")
    return values


def _modes(text: str) -> list[str]:
    modes = [v.strip() for v in text.split(",") if v.strip()]
    if not modes or any(m not in ("eager", "compiled") for m in modes):
        raise UsageError(f"--mode takes a comma-separated list of eager, compiled, got {text!r}")
    return modes


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in DTYPES]
    if not names or unknown:
        raise UsageError(f"--dtype takes a comma-separated list of {', '.join(DTYPES)}, got {text!r}")
    return names
