"""``panini-video bench batch DIR``: files per hour and frames per second of a batch, and the ledger's cost.

The videos of DIR (found as ``panini-video batch DIR`` finds them) are run as a real batch into a
scratch folder, once with each ``--jobs`` count (default 1 and 2), with the models loaded once
before the first (their load time is reported apart: a long batch pays it once). The ledger's
overhead is measured, not estimated: the time spent inside its SQLite transactions (each one
committed with ``synchronous=FULL``, as a batch does) per file, beside the time a file takes.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from panini_video.bench.report import write_json
from panini_video.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="DIR", help="a folder of videos (or one video)")
    parser.add_argument("--jobs", default="1,2", metavar="N,N", help="--jobs counts to measure (default 1,2)")
    parser.add_argument("--pipeline", default="archival", help="preset (default archival)")
    parser.add_argument("--model", help="mfr | sr | tiny | PATH (default: the preset's)")
    parser.add_argument("--detector", choices=("mobilenet", "resnet50"), help="default: the preset's")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--preset", dest="x264_preset", help="x264 speed preset (default: the preset's)")
    parser.add_argument("--det-size", type=int, help="longest side the detector sees")


def _config(args: argparse.Namespace) -> Any:
    from panini_video.batch.settings import batch_config
    from panini_video.config import load_config

    overrides = {
        "restore": {"model": args.model, "device": args.device},
        "detect": {"detector": args.detector, "det_size": args.det_size},
        "io": {"preset": args.x264_preset},
    }
    return batch_config(load_config(args.pipeline, overrides))


def run(args: argparse.Namespace) -> int:
    from panini_video.batch.runner import ThreadExecutor
    from panini_video.batch.session import BatchOptions, run_batch
    from panini_video.batch.worker import FileWorker

    try:
        counts = [int(x) for x in str(args.jobs).split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--jobs {args.jobs}: give counts separated by commas, like 1,2") from None
    if not counts or min(counts) < 1:
        raise UsageError(f"--jobs {args.jobs}: every count must be at least 1")
    config = _config(args)
    worker = FileWorker(config)
    t0 = time.perf_counter()
    worker.load()
    load_s = time.perf_counter() - t0
    sides: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="panini-bench-batch-") as tmp:
        for jobs in counts:
            out = Path(tmp) / f"jobs{jobs}"
            options = BatchOptions((args.input,), out, overwrite="overwrite", codec=config.io.codec)
            summary = run_batch(options, f"bench-{jobs}", lambda n, j=jobs: ThreadExecutor(worker, j))
            done = [r for r in summary.rows if r.state == "done"]
            if not done:
                raise UsageError(f"{args.input}: no file could be processed; see panini-video batch for why")
            frames = sum(r.frames or 0 for r in done)
            run_s = summary.run.wall_s
            file_s = sum(r.seconds or 0.0 for r in done) / len(done)
            ledger_ms = 1000 * summary.run.ledger_s / max(1, summary.run.started)
            sides.append(
                {
                    "jobs": jobs,
                    "files": len(done),
                    "failed": summary.count("failed"),
                    "frames": frames,
                    "wall_s": run_s,
                    "files_per_hour": 3600 * len(done) / run_s if run_s > 0 else 0.0,
                    "fps": frames / run_s if run_s > 0 else 0.0,
                    "file_s_mean": file_s,
                    "ledger_ms_per_file": ledger_ms,
                    "ledger_ops_per_file": summary.run.ledger_ops / max(1, summary.run.started),
                    "ledger_share": (ledger_ms / 1000) / file_s if file_s > 0 else 0.0,
                }
            )
    report = {
        "bench": "batch",
        "input": args.input,
        "model": config.restore.model,
        "detector": config.detect.detector,
        "x264_preset": config.io.preset,
        "load_s": load_s,
        "sides": sides,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
    }
    if not args.quiet:
        _print_table(report)
    if args.json:
        write_json(args.json, report)
    return 0


def _print_table(r: dict[str, Any]) -> None:
    print(f"bench batch: {r['input']}, model {r['model']}, detector {r['detector']}, x264 {r['x264_preset']}")
    m = r["machine"]
    print(f"models loaded once in {r['load_s']:.2f} s; machine: {m['cpus']} CPU(s) {m['processor']}")
    head = f"{'jobs':>4}{'files':>7}{'frames':>8}{'wall s':>9}{'files/h':>10}{'fps':>8}"
    print(f"{head}{'ledger ms/file':>16}{'share':>9}")
    for s in r["sides"]:
        print(
            f"{s['jobs']:>4}{s['files']:>7}{s['frames']:>8}{s['wall_s']:>9.2f}{s['files_per_hour']:>10.0f}"
            f"{s['fps']:>8.1f}{s['ledger_ms_per_file']:>16.2f}{s['ledger_share']:>9.2%}"
        )
