"""``panini-video bench NAME ...``: the benchmarks, one module each in ``panini_video.bench``.

Each bench module has ``add_arguments(parser)`` and ``run(args) -> int``; it prints a table and
can write JSON with ``--json PATH``. Figures are ratios against a baseline measured in the same
run wherever a baseline exists.
"""

from __future__ import annotations

import argparse
import importlib

from panini_video.cli.run import add_overwrite_options, overwrite_mode

DESCRIPTION = "The benchmarks, one module each in panini_video.bench; each prints a table (--json PATH: also JSON)."
BENCHES = {
    "model": ("panini_video.bench.model", "Panini-Net throughput, memory and precision error"),
    "io": ("panini_video.bench.io", "decode+encode through the graph against a plain PyAV loop"),
    "faces": ("panini_video.bench.faces", "detector recall, speed, landmark jitter, id switches"),
    "pipeline": ("panini_video.bench.pipeline", "end-to-end fps and the time share of each stage"),
    "stability": ("panini_video.bench.stability", "temporal stability of restored faces"),
    "batch": ("panini_video.bench.batch", "a batch's files per hour and fps (--jobs 1, 2), ledger cost"),
    "gpu": ("panini_video.bench.gpu", "the GPU check: cuda tests, model, pipeline, io, NVDEC"),
    "live": ("panini_video.bench.live", "a live run's latency, drops and late frames in real time"),
}


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="store_true")
    sub = parser.add_subparsers(dest="bench", required=True, metavar="NAME")
    for name, (module_name, help_text) in BENCHES.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("-v", "--verbose", action="count", default=0)
        p.add_argument("-q", "--quiet", action="store_true")
        p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
        add_overwrite_options(p)
        try:
            importlib.import_module(module_name).add_arguments(p)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            p.set_defaults(_missing=module_name)
    return parser


def run(args: argparse.Namespace) -> int:
    from panini_video import outputs

    module_name = BENCHES[args.bench][0]
    if args.json:  # the report's path is checked before the bench spends its minutes
        given = getattr(args, "input", None)
        inputs: list[str] = [given] if isinstance(given, str) else []
        if not outputs.check_outputs([outputs.Output(args.json, "--json")], inputs, overwrite_mode(args)):
            print(f"{args.json} exists; skipped (-n)")
            return 0
    return int(importlib.import_module(module_name).run(args) or 0)
