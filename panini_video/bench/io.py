"""``panini-video bench io IN``: decode+encode through the stage graph against a plain PyAV loop.

The sides do the same job on the same file in the same run: decode the video (FFmpeg's
threads), encode it with the encoder the output's extension picks (same options), and copy the
audio. The graph side is ``run_pipeline`` with no face stages (reader thread, source, reorder
and encode threads, bounded queues), its frames ``Picture`` records in their decoded pixel
format, handed to the encoder as they are. The plain side is one loop in one thread that takes
every frame through RGB and back, which is what the graph did before frames stayed in their
decoded format (issue 13): graph / plain is what keeping the format (and the threads) gains.

Where Debian's ``ffmpeg`` command line is installed, a third side runs it on the same file with
the same encoder settings (``-c:v libx264 -preset P [-crf C] -pix_fmt yuv420p``, every frame
passed with its timestamp, the audio copied): the rate a user gets from FFmpeg itself. The ratio
graph / ffmpeg is issue 13's target (at least 0.95 at 1080p). Its peak memory is ffmpeg's, as
the measuring child's ``RUSAGE_CHILDREN`` reports it (the child is a bare Python, so what it
folds in is small). The report also gives the bytes one frame in flight takes: as the graph
holds it (the decoded format) and as an RGB frame (before).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from panini_video.bench.report import write_json
from panini_video.errors import PaniniError, UsageError

log = logging.getLogger(__name__)

SIDES = ("plain", "graph")
FFMPEG = shutil.which("ffmpeg")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="video file to decode and re-encode")
    parser.add_argument(
        "--repeat", type=int, default=4, help="measurements per side (even: each side as often after plain's)"
    )
    parser.add_argument("--ext", default=".mp4", help="output container, which picks the encoder (default .mp4)")
    parser.add_argument("--preset", help="x264 speed preset for both sides (default: medium)")
    parser.add_argument("--crf", type=int, help="encoder quality for both sides")
    parser.add_argument("--queue-size", type=int, default=8, help="the graph's queue size")
    parser.add_argument("--no-ffmpeg", action="store_true", help="leave out the ffmpeg command line's side")


def run(args: argparse.Namespace) -> int:
    src = Path(args.input)
    if args.repeat < 1:
        raise UsageError("--repeat must be at least 1")
    from panini_video.io import probe
    from panini_video.io.picture import picture_bytes

    info = probe(src)  # typed InputError before any child starts
    sides = (*SIDES, "ffmpeg") if FFMPEG and not getattr(args, "no_ffmpeg", False) else SIDES
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="panini-bench-io-") as tmp:
        for i in range(args.repeat):
            # interleaved, so a slow spell of a shared machine hits every side. A run right after
            # the plain side is slowed by it (measured at 1080p: the graph 20.2 and 19.8 fps right
            # after it, 21.4 and 21.6 after ffmpeg's), so the two sides compared take turns there
            for side in _order(sides, i):
                out = Path(tmp) / f"{side}{i}{args.ext}"
                results[side].append(_measure(side, src, out, args))
    summary = _summarise(results)
    report = {
        "bench": "io",
        "input": str(src),
        "width": info.width,
        "height": info.height,
        "frames": results["graph"][0]["frames"],
        "repeat": args.repeat,
        "encoder": {"ext": args.ext, "preset": args.preset or "medium", "crf": args.crf},
        "queue_size": args.queue_size,
        "frame_bytes": {"picture": picture_bytes(info.pix_fmt, info.size), "rgb": picture_bytes(None, info.size)},
        "pix_fmt": info.pix_fmt,
        **summary,
        "machine": _machine(),
    }
    if not args.quiet:
        _print_table(report)
    if args.json:
        write_json(args.json, report)
    return 0


def _order(sides: tuple[str, ...], round_: int) -> tuple[str, ...]:
    """The sides in round ``round_``: plain first, then the others, reversed every other round."""
    rest = sides[1:] if round_ % 2 == 0 else sides[:0:-1]
    return (sides[0], *rest)


def _measure(side: str, src: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One side once, in a child process: its timing (from the child) and its peak memory."""
    cmd = [sys.executable, "-m", "panini_video.bench.io", side, str(src), str(out), str(args.queue_size)]
    cmd += [args.preset or "", "" if args.crf is None else str(args.crf)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout.read(), proc.stderr.read()  # the child writes little: no pipe deadlock
    proc.wait()
    if proc.returncode != 0:
        raise PaniniError(f"bench io: the {side} measurement failed (exit {proc.returncode}): {stderr.strip()[-800:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    log.info("%s: %s", side, {k: v for k, v in result.items() if k != "stages"})
    return result


def peak_rss_mib() -> float:
    """This process's peak resident memory since its ``exec``, in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def _summarise(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, runs in results.items():
        fps = [r["frames"] / r["wall_s"] for r in runs]
        out[side] = {
            "fps": statistics.median(fps),
            "fps_all": fps,
            "wall_s": statistics.median(r["wall_s"] for r in runs),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "peak_rss_mib_all": [r["peak_rss_mib"] for r in runs],
            "frames": runs[0]["frames"],
        }
    frames = {side: out[side]["frames"] for side in results}
    if len(set(frames.values())) != 1:
        raise PaniniError(f"bench io: the sides wrote different frame counts: {frames}")
    out["ratio"] = out["graph"]["fps"] / out["plain"]["fps"]
    out["peak_rss_ratio"] = out["graph"]["peak_rss_mib"] / out["plain"]["peak_rss_mib"]
    if "ffmpeg" in out:
        out["ratio_ffmpeg"] = out["graph"]["fps"] / out["ffmpeg"]["fps"]
    return out


def _machine() -> dict[str, Any]:
    import av

    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pyav": av.__version__,
    }


def _print_table(r: dict[str, Any]) -> None:
    m = r["machine"]
    print(f"bench io: {r['input']} ({r['width']}x{r['height']}, {r['frames']} frames), x264 {r['encoder']['preset']}")
    print(f"machine: {m['cpus_usable']} usable CPU(s), {m['processor']}, {m['platform']}")
    print(f"{'':14}{'fps':>9}{'wall s':>9}{'peak RSS MiB':>14}")
    for side, label in (("plain", "plain PyAV"), ("graph", "stage graph"), ("ffmpeg", "ffmpeg CLI")):
        if side not in r:
            continue
        s = r[side]
        print(f"{label:14}{s['fps']:9.1f}{s['wall_s']:9.2f}{s['peak_rss_mib']:14.1f}")
    print(f"ratio graph/plain: {r['ratio']:.2f}x fps, {r['peak_rss_ratio']:.2f}x peak memory (median of {r['repeat']})")
    if "ratio_ffmpeg" in r:
        print(f"ratio graph/ffmpeg CLI: {r['ratio_ffmpeg']:.2f}x fps")
    fb = r["frame_bytes"]
    print(f"a frame in flight: {fb['picture'] / 2**20:.2f} MiB as {r['pix_fmt']}, {fb['rgb'] / 2**20:.2f} MiB as RGB")


# -- the child side: one measurement, result as one JSON line on stdout --------------------------


def _io_config(preset: str, crf: str) -> Any:
    from panini_video.config import IOConfig

    return IOConfig(preset=preset or None, crf=int(crf) if crf else None)


def measure_graph(src: Path, out: Path, queue_size: int, preset: str = "", crf: str = "") -> dict[str, Any]:
    """``run_pipeline`` with no face stages."""
    from panini_video.config import RunConfig, RuntimeConfig
    from panini_video.run.pipeline import run_pipeline

    config = RunConfig(io=_io_config(preset, crf), runtime=RuntimeConfig(queue_size=queue_size))
    t = time.perf_counter()
    report = run_pipeline(src, out, config, stages=[])
    wall = time.perf_counter() - t
    return {"frames": report.frames_out, "wall_s": wall, "stages": report.graph.to_dict()["stages"]}


def measure_plain(src: Path, out: Path, preset: str = "", crf: str = "") -> dict[str, Any]:
    """The baseline: one thread demuxes, decodes, converts, encodes and muxes, copying the audio."""
    import av
    import numpy as np

    from panini_video.io.encoder import plan_encoder

    t = time.perf_counter()
    frames = 0
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        vin.codec_context.thread_type = "AUTO"
        width, height = vin.codec_context.width, vin.codec_context.height
        plan = plan_encoder(out, _io_config(preset, crf), (width, height))
        with av.open(str(out), "w", container_options=plan.container_options) as outc:
            vout = outc.add_stream(plan.codec, rate=vin.average_rate or 25, options=dict(plan.options))
            vout.width, vout.height = plan.coded_size
            vout.pix_fmt = plan.pix_fmt
            vout.codec_context.time_base = vin.time_base
            vout.time_base = vin.time_base
            audio = {s.index: outc.add_stream_from_template(s) for s in inp.streams.audio}
            for packet in inp.demux(vin, *inp.streams.audio):
                if packet.stream.index in audio:
                    if packet.dts is not None:
                        packet.stream = audio[packet.stream.index]
                        outc.mux(packet)
                    continue
                for vf in packet.decode():
                    image = vf.to_ndarray(format="rgb24")
                    if plan.padded:
                        cw, ch = plan.coded_size
                        image = np.pad(image, ((0, ch - height), (0, cw - width), (0, 0)), mode="edge")
                    of = av.VideoFrame.from_ndarray(image, format="rgb24")
                    of.pts, of.time_base = vf.pts, vin.time_base
                    for p in vout.encode(of):
                        outc.mux(p)
                    frames += 1
            for p in vout.encode(None):
                outc.mux(p)
    return {"frames": frames, "wall_s": time.perf_counter() - t}


def measure_ffmpeg(src: Path, out: Path, preset: str = "", crf: str = "") -> dict[str, Any]:
    """Debian's ffmpeg on the same file with the same encoder settings; frames counted afterwards."""
    import resource

    import av

    if FFMPEG is None:
        raise PaniniError("bench io: the ffmpeg command line is not installed")
    cmd = [FFMPEG, "-nostdin", "-v", "error", "-y", "-i", str(src), "-map", "0:v:0", "-map", "0:a?"]
    cmd += ["-c:v", "libx264", "-preset", preset or "medium", "-pix_fmt", "yuv420p", "-fps_mode", "passthrough"]
    cmd += ["-c:a", "copy"]  # every frame with its own timestamp, as the graph keeps them
    if crf:
        cmd += ["-crf", crf]
    t = time.perf_counter()
    done = subprocess.run([*cmd, str(out)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise PaniniError(f"bench io: ffmpeg failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
    with av.open(str(out)) as c:
        frames = sum(1 for p in c.demux(c.streams.video[0]) if p.size)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return {"frames": frames, "wall_s": wall, "ffmpeg_peak_rss_mib": peak}


def _child_main(argv: list[str]) -> int:
    side, src, out, queue_size, preset, crf = argv
    if side == "ffmpeg":
        result = measure_ffmpeg(Path(src), Path(out), preset, crf)
        result["peak_rss_mib"] = result.pop("ffmpeg_peak_rss_mib")
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    if side == "graph":
        result = measure_graph(Path(src), Path(out), int(queue_size), preset, crf)
    elif side == "plain":
        result = measure_plain(Path(src), Path(out), preset, crf)
    else:
        raise SystemExit(f"unknown side {side!r}; one of {', '.join((*SIDES, 'ffmpeg'))}")
    result["peak_rss_mib"] = peak_rss_mib()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
