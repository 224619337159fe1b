"""``panini-video bench pipeline IN``: end-to-end fps and the time share of every stage.

The run is the one ``panini-video IN OUT`` makes: the same preset and flags resolve the config,
``build_stages`` builds the stages and ``run_pipeline`` runs reader -> detect -> track ->
restore -> reorder -> encoder, on the first ``--frames`` frames of IN. The output goes to a
temporary ``.mp4`` (deleted afterwards) with the input's audio copied, as the main command does.
Before the timed run, ``--warmup`` frames go through fresh stages sharing the same weights, so
first-call costs (CUDA context and kernels, allocator growth) stay out of the figures.

Figures: ``fps`` is frames written over the run's wall time (open, graph, encoder flush and the
rest of the audio: what a user waits for once the weights are loaded); ``graph_fps`` over the
graph's wall time only. Every stage's busy share is its busy time over the graph's wall time;
the stages run in their own threads, so the shares overlap and need not add up to 100%, and
the largest one is the bottleneck. On the CPU a stage's busy time includes waiting for a core
(the stages' threads share them): on a saturated machine the shares add up to about the number
of cores. On CUDA the restore stage's busy time is the time its thread spent launching work and
waiting for finished frames, not the GPU's time.

A variant name whose weights are not in the cache runs with seeded random weights (a forward
costs the same whatever the weights), and the report says so.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from panini_video.bench.report import write_json
from panini_video.config import RestoreConfig, RunConfig
from panini_video.errors import UsageError, WeightsNotFoundError

log = logging.getLogger(__name__)


# Shared with bench stability ----------------------------------------------------------------------


def add_model_arguments(parser: argparse.ArgumentParser, default_model: str | None = None) -> None:
    """--model, --device, --precision, --batch-size, --seed."""
    default = "the preset's" if default_model is None else default_model
    parser.add_argument("--model", default=default_model, help=f"mfr | sr | tiny | PATH (default: {default})")
    parser.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda when available)")
    parser.add_argument("--precision", default=None, choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--batch-size", type=int, default=None, help="faces per forward")
    parser.add_argument("--seed", type=int, default=0, help="seed of random weights")


def bench_model(config: RestoreConfig, seed: int = 0) -> tuple[Any, str]:
    """(model, its weights' label): the file's, as its metadata says (trained or random), else seeded random ones."""
    from panini_video.models import VARIANTS, PaniniNet, load_model
    from panini_video.models.serialize import weights_label_of
    from panini_video.restore.executor import resolve_device

    device = resolve_device(config.device)
    try:
        return load_model(config.model, device=device), weights_label_of(config.model)
    except WeightsNotFoundError:
        if config.model not in VARIANTS:
            raise
    log.warning("no weights for %s in the cache: random weights (seed %d)", config.model, seed)
    torch.manual_seed(seed)
    return PaniniNet(VARIANTS[config.model]).eval().to(device), f"random weights, seed {seed}"


def bench_models(config: RunConfig, model: Any = None, seed: int = 0) -> tuple[Any, str, torch.device, Any]:
    """(restorer, its weights' label, device, face detector) for a bench; ``model`` replaces the restorer."""
    from panini_video.faces.stages import load_face_detector
    from panini_video.restore.executor import resolve_device

    if model is None:
        model, weights = bench_model(config.restore, seed=seed)
    else:
        weights = "given model"
    device = resolve_device(config.restore.device)
    detector = load_face_detector(config.detect, config.detect.device or str(device))
    return model, weights, device, detector


def machine_info(device: str) -> dict[str, object]:
    from panini_video.bench.model import machine

    return machine(torch.device(device))


def aligned(lines: list[list[str]]) -> list[str]:
    """Rows of cells as text columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
        for line in lines
    ]


# The pipeline bench -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from panini_video.cli.run import DEFAULT_PIPELINE, add_face_options

    parser.add_argument("input", metavar="IN", help="a video file")
    parser.add_argument("--frames", type=int, default=100, help="frames from the start of IN (default 100)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed frames run first (default 2)")
    parser.add_argument(
        "--pipeline", metavar="NAME|FILE", default=DEFAULT_PIPELINE, help="preset, as for the main command"
    )
    add_model_arguments(parser)
    parser.add_argument("--dre-mode", choices=["track", "frame"], default=None)
    parser.add_argument("--upscale", type=int, default=None)
    parser.add_argument("--queue-size", type=int, default=None, help="frames between two stages")
    add_face_options(parser)


def run(args: argparse.Namespace) -> int:
    if args.frames < 1:
        raise UsageError("--frames must be at least 1")
    if args.warmup < 0:
        raise UsageError("--warmup must not be negative")
    result = bench(args.input, config_from(args), frames=args.frames, warmup=args.warmup, seed=args.seed)
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
    return 0


def config_from(args: argparse.Namespace) -> RunConfig:
    """The preset with the flags over it, as ``panini-video IN OUT`` resolves them."""
    from panini_video.cli.run import face_overrides, restore_overrides
    from panini_video.config import load_config

    overrides: dict[str, Any] = {
        **face_overrides(args),
        "restore": restore_overrides(args),
        "runtime": {"queue_size": args.queue_size},
    }
    return load_config(args.pipeline, overrides)


def bench(
    path: str | Path,
    config: RunConfig,
    *,
    frames: int = 100,
    warmup: int = 2,
    seed: int = 0,
    model: Any = None,
) -> dict[str, Any]:
    """Run the main command's pipeline on the first ``frames`` frames of ``path``; its figures.

    ``model`` replaces the one ``config.restore.model`` names (tests); otherwise the cached
    weights, or seeded random weights for a variant without them.
    """
    from panini_video.io import probe
    from panini_video.run.pipeline import build_stages, run_pipeline

    if config.annotate:
        raise UsageError("bench pipeline measures restoration; a preset with annotate = true does not restore")
    info = probe(path)
    t0 = time.perf_counter()
    model, weights, device, detector = bench_models(config, model, seed)
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="panini-bench-") as tmp:
        if warmup:
            stages = build_stages(config, info, model=model, detector=detector)
            run_pipeline(path, Path(tmp) / "warmup.mp4", config, stages=stages, max_frames=warmup)
        stages = build_stages(config, info, model=model, detector=detector)
        report = run_pipeline(path, Path(tmp) / "bench.mp4", config, stages=stages, max_frames=frames)
    graph = report.graph
    rs = report.stage_stats.get("restore", {})
    faces = int(rs.get("faces", 0))
    return {
        "input": str(path),
        "size": [info.width, info.height],
        "frames": report.frames_out,
        "warmup_frames": warmup,
        "model": config.restore.model,
        "weights": weights,
        "device": rs.get("device", str(device)),
        "precision": rs.get("precision"),
        "batch_size": config.restore.batch_size,
        "batch_size_mean": rs.get("batch_size_mean", 0.0),
        "dre_mode": config.restore.dre_mode,
        "upscale": config.restore.upscale,
        "det_size": config.detect.det_size,
        "detect_every": config.detect.detect_every,
        "faces": faces,
        "faces_failed": int(rs.get("faces_failed", 0)),
        "faces_per_frame": faces / report.frames_out if report.frames_out else 0.0,
        "load_s": load_s,
        "wall_s": report.wall_s,
        "graph_wall_s": graph.wall_s,
        "fps": report.fps,
        "graph_fps": graph.fps,
        "faces_per_s": faces / report.wall_s if report.wall_s > 0 else 0.0,
        "stages": graph.to_dict()["stages"],
        "restore": {k: v for k, v in rs.items() if k != "tracks"},
        "machine": machine_info(rs.get("device", str(device))),
    }


def format_table(result: dict[str, Any]) -> str:
    m = result["machine"]
    where = m.get("gpu") or f"{m['cpu']} ({m['torch_threads']} torch threads, {m['cpu_count']} CPUs)"
    head = [
        f"{result['input']} ({result['size'][0]}x{result['size'][1]}), {result['frames']} frames "
        f"(after {result['warmup_frames']} warm-up), {result['faces']} faces "
        f"({result['faces_per_frame']:.2f}/frame, {result['faces_failed']} failed)",
        f"{result['fps']:.3g} fps end to end ({result['graph_fps']:.3g} fps in the graph), "
        f"{result['faces_per_s']:.3g} faces/s; weights loaded in {result['load_s']:.1f} s (not counted)",
        f"model {result['model']} ({result['weights']}) on {result['device']} {result['precision']}, "
        f"batch {result['batch_size']} (mean {result['batch_size_mean']:.2f}), dre {result['dre_mode']}, "
        f"detector at {result['det_size']} px every {result['detect_every']} frame(s); {where}",
    ]
    lines = [["stage", "items", "busy s", "share", "queue mean", "queue max"]]
    for s in result["stages"]:
        lines.append(
            [
                s["name"],
                str(s["items_out"] if s["kind"] == "source" else s["items_in"]),
                f"{s['busy_s']:.2f}",
                f"{100 * s['busy_share']:.1f}%",
                f"{s['queue_depth_mean']:.1f}",
                str(s["queue_depth_max"]),
            ]
        )
    return "\n".join([*head, *aligned(lines)])
