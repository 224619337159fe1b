"""``panini-video bench live SOURCE``: latency and drops of a live run at the source's real rate.

SOURCE is a live URL or device (pulled as the main command pulls it) or a file, played at its own
rate and looped (``PacedSource``: the frames arrive as a camera's would). For each
``--max-latency`` value (``none``: no budget, the queues alone bound the delay) the live run is
made for ``--seconds``: the ``live`` preset with the flags over it, the stages built afresh on
weights loaded once, the output recorded to a temporary file with the live encoder. Figures per
setting: frames arrived, out, the per-frame latency (arrival at the source to encoded) p50, p95
and p99, the share of frames dropped (by the source, the drop-oldest queue, the latency gate,
the sink) and the share that was late at the restorer, and the faces restored per second.

A variant name whose weights are not in the cache runs with seeded random weights, as in
``bench pipeline``; the report says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from panini_video.bench.pipeline import add_model_arguments, aligned, bench_models, machine_info
from panini_video.bench.report import write_json
from panini_video.config import RunConfig
from panini_video.errors import UsageError

log = logging.getLogger(__name__)


def _latencies(text: str) -> list[float | None]:
    values: list[float | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part in ("none", "off", ""):
            values.append(None)
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a latency in ms or 'none': {part!r}") from None
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from panini_video.cli.run import add_face_options

    parser.add_argument("input", metavar="SOURCE", help="a live URL or device, or a file played at its own rate")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per setting (default 10)")
    parser.add_argument(
        "--max-latency",
        type=_latencies,
        default=_latencies("none,250,500,1000"),
        metavar="MS,...",
        help="latency budgets to compare, 'none' for no budget (default none,250,500,1000)",
    )
    parser.add_argument("--late", choices=["pass", "drop"], default=None, help="what a late frame gets (default pass)")
    parser.add_argument("--pipeline", metavar="NAME|FILE", default="live", help="preset (default live)")
    add_model_arguments(parser, default_model="tiny")
    parser.add_argument("--queue-size", type=int, default=None, help="frames between two stages")
    add_face_options(parser)


def config_from(args: argparse.Namespace) -> RunConfig:
    from panini_video.cli.run import face_overrides, restore_overrides
    from panini_video.config import load_config

    return load_config(
        args.pipeline,
        {
            **face_overrides(args),
            "restore": restore_overrides(args),
            "runtime": {"queue_size": args.queue_size},
            "live": {"late": args.late},
        },
    )


def run(args: argparse.Namespace) -> int:
    if not args.seconds > 0:
        raise UsageError("--seconds must be above 0")
    result = bench(args.input, config_from(args), seconds=args.seconds, budgets=args.max_latency, seed=args.seed)
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
    return 0


def _source(name: str, config: RunConfig) -> Any:
    from panini_video.io.urls import live_input_kind

    if live_input_kind(name) is not None:
        from panini_video.run.live_source import LiveSource

        return LiveSource(name, config.live, decode_threads=config.io.decode_threads)
    from panini_video.run.sources import PacedSource

    return PacedSource(name, decode_threads=config.io.decode_threads, loop=True)


def bench(
    name: str | Path,
    config: RunConfig,
    *,
    seconds: float = 10.0,
    budgets: list[float | None] | None = None,
    seed: int = 0,
    model: Any = None,
) -> dict[str, Any]:
    """One live run of ``seconds`` per latency budget; the figures of each."""
    from panini_video.io.urls import mask
    from panini_video.run.live_sink import LiveSink
    from panini_video.run.pipeline import build_stages
    from panini_video.run.pipeline import run as run_live

    if config.annotate:
        raise UsageError("bench live measures restoration; a preset with annotate = true does not restore")
    budgets = [None] if budgets is None else budgets
    model, weights, device, detector = bench_models(config, model, seed)
    rows: list[dict[str, Any]] = []
    info = None
    with tempfile.TemporaryDirectory(prefix="panini-bench-live-") as tmp:
        for i, budget in enumerate(budgets):
            cfg = config.with_overrides({"live": {"max_latency_ms": budget}})
            if budget is None:  # with_overrides ignores None: take the budget away explicitly
                cfg = dataclasses.replace(cfg, live=dataclasses.replace(cfg.live, max_latency_ms=None))
            source = _source(str(name), cfg)
            info = source.info
            stages = build_stages(cfg, info, model=model, detector=detector)
            timer = threading.Timer(seconds, source.stop)
            timer.start()
            t0 = time.monotonic()
            try:
                report = run_live(source, LiveSink(str(Path(tmp) / f"out{i}.ts"), cfg.io, cfg.live), cfg, stages=stages)
            finally:
                timer.cancel()
            wall = time.monotonic() - t0
            live = report.live or {}
            dropped = live.get("dropped", {})
            arrived = int(live.get("frames_in", 0)) + int(dropped.get("source", 0))
            late = live.get("late") or {}
            faces = int(report.stage_stats.get("restore", {}).get("faces", 0))
            rows.append(
                {
                    "max_latency_ms": budget,
                    "late_policy": cfg.live.late,
                    "seconds": round(wall, 2),
                    "frames_arrived": arrived,
                    "frames_out": report.frames_out,
                    "input_fps": arrived / wall if wall > 0 else 0.0,
                    "output_fps": report.frames_out / wall if wall > 0 else 0.0,
                    "latency": live.get("latency", {}),
                    "dropped": dropped,
                    "dropped_share": dropped.get("total", 0) / arrived if arrived else 0.0,
                    "late": late.get("late_passed", 0) + late.get("late_dropped", 0),
                    "late_share": (late.get("late_passed", 0) + late.get("late_dropped", 0)) / arrived
                    if arrived
                    else 0.0,
                    "faces_restored": faces,
                    "faces_per_s": faces / wall if wall > 0 else 0.0,
                }
            )
    assert info is not None
    return {
        "source": mask(str(name)),
        "size": [info.width, info.height],
        "frame_rate": str(info.frame_rate),
        "model": config.restore.model,
        "weights": weights,
        "device": str(device),
        "seconds_each": seconds,
        "rows": rows,
        "machine": machine_info(str(device)),
    }


def format_table(result: dict[str, Any]) -> str:
    m = result["machine"]
    where = m.get("gpu") or f"{m['cpu']} ({m['torch_threads']} torch threads, {m['cpu_count']} CPUs)"
    head = [
        f"{result['source']} ({result['size'][0]}x{result['size'][1]} at {result['frame_rate']} fps), "
        f"{result['seconds_each']:g} s per setting",
        f"model {result['model']} ({result['weights']}) on {result['device']}; {where}",
    ]
    lines = [["max latency", "in fps", "out fps", "p50 ms", "p95 ms", "p99 ms", "dropped", "late", "faces/s"]]
    for r in result["rows"]:
        lat = r["latency"]
        budget = "none" if r["max_latency_ms"] is None else f"{r['max_latency_ms']:g} ms ({r['late_policy']})"
        lines.append(
            [
                budget,
                f"{r['input_fps']:.1f}",
                f"{r['output_fps']:.1f}",
                str(lat.get("p50_ms")),
                str(lat.get("p95_ms")),
                str(lat.get("p99_ms")),
                f"{100 * r['dropped_share']:.1f}%",
                f"{100 * r['late_share']:.1f}%",
                f"{r['faces_per_s']:.2f}",
            ]
        )
    return "\n".join([*head, *aligned(lines)])
