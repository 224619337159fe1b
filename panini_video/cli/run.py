"""``panini-video IN OUT [options]``: restore the faces of one video.

The pipeline preset (``--pipeline``, default ``default``) sets every option; flags given on the
command line override it. Exit codes come from the typed errors (see ``panini_video.errors``):
0 done, 2 bad options, 3 bad input, 4 output not writable, 5 a stage failed, 6 weights,
128 + N on signal N (130 Ctrl-C, 143 SIGTERM). On any failure the output is not created, and an
existing output is kept unless -y is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from pathlib import Path
from typing import Any, get_args, get_type_hints

from panini_video import outputs
from panini_video.config import Backpressure, DetectConfig, DreMode, Precision, load_config, parse_size
from panini_video.errors import UsageError
from panini_video.outputs import Output, Overwrite
from panini_video.run.pipeline import RunReport, run_pipeline

log = logging.getLogger(__name__)

DEFAULT_PIPELINE = "default"
EPILOG = """exit codes: 0 done, 2 bad options, 3 bad input, 4 output not writable, 5 a stage failed,
6 weights missing or mismatched, 128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM).
Presets: default, archival, live, preview, fast (panini_video/pipelines/*.toml), or a TOML file.
An existing output is kept unless -y is given; -n skips it without an error."""


# Flags only parse numbers here; the accepted ranges live on the config fields (panini_video.config),
# so a flag and the same key in a preset are checked by one rule and the message names both.
def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def parse_size_arg(text: str) -> int:
    try:
        return parse_size(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_overwrite_options(parser: argparse.ArgumentParser) -> None:
    """-y / -n, as ffmpeg has them: an existing output is kept unless -y is given."""
    g = parser.add_mutually_exclusive_group()
    g.add_argument("-y", "--overwrite", action="store_true", help="replace outputs that exist")
    g.add_argument("-n", "--no-overwrite", action="store_true", help="skip, without an error, when an output exists")


def overwrite_mode(args: argparse.Namespace) -> Overwrite:
    if getattr(args, "overwrite", False):
        return "overwrite"
    if getattr(args, "no_overwrite", False):
        return "skip"
    return "refuse"


def add_face_options(parser: argparse.ArgumentParser) -> None:
    """The detection, tracking and face-selection flags (shared with ``panini-video faces``)."""
    # Every option defaults to None: the preset's value stands unless the flag is given.
    g = parser.add_argument_group("detection and tracking")
    g.add_argument("--detector", choices=get_args(get_type_hints(DetectConfig)["detector"]))
    g.add_argument("--detector-weights", metavar="PATH", help="RetinaFace weights (default: the cache)")
    g.add_argument("--det-threshold", type=_float, metavar="P", help="detection confidence threshold")
    g.add_argument("--det-size", type=_int, metavar="PX", help="longest side the detector sees")
    g.add_argument("--detect-every", type=_int, metavar="N", help="detect every N frames, track between")
    g.add_argument("--smooth", type=_float, metavar="S", help="landmark smoothing strength; 0: off")
    g = parser.add_argument_group("which faces")
    g.add_argument("--max-faces", type=_int, metavar="N", help="at most N faces per frame, largest first")
    g.add_argument("--min-face-size", type=_float, metavar="PX", help="skip faces less tall than this")
    g.add_argument("--only-largest", action=argparse.BooleanOptionalAction, help="the largest face of a frame only")


def face_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The flags of ``add_face_options`` as ``{section: {key: value}}`` (None: the preset's value)."""
    return {
        "detect": {
            "detector": args.detector,
            "weights": args.detector_weights,
            "threshold": args.det_threshold,
            "det_size": args.det_size,
            "detect_every": args.detect_every,
        },
        "smooth": {"strength": args.smooth},
        "select": {"max_faces": args.max_faces, "min_face_size": args.min_face_size, "only_largest": args.only_largest},
    }


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Restore the faces of a video with Panini-Net; every frame, timestamp and audio packet is kept.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", metavar="IN", help="input video file")
    parser.add_argument("output", metavar="OUT", help="output video file (.mp4, .mov, .mkv, .webm)")
    parser.add_argument(
        "--pipeline", metavar="NAME|FILE", default=DEFAULT_PIPELINE, help="preset or TOML file (default: %(default)s)"
    )
    parser.add_argument(
        "--stats-json", metavar="PATH|-", help="write the run's figures (per stage) as JSON (-: stdout)"
    )
    add_overwrite_options(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only, no progress bar")
    # Every option below defaults to None: the preset's value stands unless the flag is given.
    g = parser.add_argument_group("output encoding")
    g.add_argument("--codec", help="encoder (default: from the extension: libx264, libvpx-vp9)")
    g.add_argument("--crf", type=_int, help="quality; lower is better and bigger (x264: 0-51, default 23)")
    g.add_argument("--preset", help="x264 speed preset (ultrafast ... veryslow)")
    g.add_argument("--pix-fmt", help="pixel format of the output (default yuv420p)")
    add_face_options(parser)
    g = parser.add_argument_group("restoration")
    g.add_argument("--model", help="mfr | sr | tiny | PATH to a .safetensors file")
    g.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    g.add_argument("--precision", choices=get_args(Precision))
    g.add_argument("--batch-size", type=_int, metavar="N", help="faces per model call")
    g.add_argument("--dre-mode", choices=get_args(DreMode), help="one degradation code per track, or per frame")
    g.add_argument("--dre-ema", type=_float, metavar="A", help="how fast a track's code follows; 0 freezes it")
    g.add_argument(
        "--download",
        action=argparse.BooleanOptionalAction,
        help="fetch the official weights on first use (default); --no-download: fail if they are not cached",
    )
    g.add_argument("--upscale", type=_int, metavar="K", help="output size factor")
    g.add_argument("--color-match", action=argparse.BooleanOptionalAction, help="match restored faces' colours")
    g.add_argument("--annotate", action=argparse.BooleanOptionalAction, help="draw the faces found; no restoration")
    g = parser.add_argument_group("runtime")
    g.add_argument("--queue-size", type=_int, metavar="N", help="frames waiting between two stages")
    g.add_argument("--backpressure", choices=get_args(Backpressure), help="block (files) or drop-oldest (live only)")
    g.add_argument(
        "--max-memory",
        type=parse_size_arg,
        metavar="SIZE",
        help="frames in flight stay within this (2G, 512M; default: a quarter of RAM)",
    )
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, Any] | Any]:
    """The flags as ``{section: {key: value}}``; None (flag not given) leaves the preset's value."""
    return {
        "io": {"codec": args.codec, "crf": args.crf, "preset": args.preset, "pix_fmt": args.pix_fmt},
        **face_overrides(args),
        "blend": {"color_match": args.color_match},
        "restore": restore_overrides(args),
        "runtime": {"queue_size": args.queue_size, "backpressure": args.backpressure, "max_memory": args.max_memory},
        "annotate": args.annotate,
    }


RESTORE_FLAGS = ("model", "device", "precision", "batch_size", "dre_mode", "dre_ema", "upscale", "download")


def restore_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The restoration flags as ``{key: value}`` (a parser without some of them leaves those as None)."""
    return {name: getattr(args, name, None) for name in RESTORE_FLAGS}


def write_stats(path: str, report: RunReport) -> None:
    """The run's figures as JSON (``-``: stdout), written whole or not at all."""
    text = json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    outputs.write_text(path, text, option="--stats-json")


LIVE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def check_input_name(name: str) -> None:
    """An input is a file; a URL of a live source is recognised and refused for now."""
    if LIVE_URL.match(name) and not Path(name).exists():
        scheme = name.split(":", 1)[0]
        raise UsageError(f"{name}: {scheme}:// inputs (live streams) are not supported by this version; give a file")
    if name == "-":
        raise UsageError("reading the video from standard input is not supported by this version; give a file")


def summary_line(report: RunReport, annotate: bool) -> str:
    """One line for a log file or a pipe: what was done, how much, how long, where."""
    faces = report.stage_stats.get("restore", {}).get("faces") if not annotate else None
    if faces is None:
        faces = report.stage_stats.get("track", {}).get("faces")
    what = "annotated" if annotate else "restored"
    face_text = "" if faces is None else f", {faces} faces"
    return (
        f"panini-video: {what} {report.frames_out} frames{face_text} in {report.wall_s:.1f} s "
        f"({report.fps:.1f} fps) -> {report.output}"
    )


def run(args: argparse.Namespace) -> int:
    from panini_video.cli.progress import ProgressBar, download_progress  # tqdm only when the command runs

    check_input_name(args.input)
    config = load_config(args.pipeline, overrides_from(args))
    if config.runtime.backpressure == "drop-oldest":
        raise UsageError(
            f"{args.input} is a file: drop-oldest backpressure (from --backpressure or the "
            f"'{args.pipeline}' preset) would drop frames; give --backpressure block"
        )
    from panini_video.restore.executor import resolve_device

    resolve_device(config.restore.device)  # an unknown or absent device is a usage error, now
    if config.detect.device is not None:
        resolve_device(config.detect.device)
    targets = [Output(args.output, "OUT")]
    if args.stats_json is not None:  # an empty path is refused by the output rule, not ignored
        targets.append(Output(args.stats_json, "--stats-json", stdout_ok=True))
    if not outputs.check_outputs(targets, [args.input], overwrite_mode(args)):
        log.warning("%s exists; skipped (-n)", args.output)
        return 0
    outputs.remove_stale_temps(Path(t.path).parent for t in targets if not t.is_stdout)
    description = "annotating" if config.annotate else "restoring"
    progress = ProgressBar(description=description) if ProgressBar.wanted(args.quiet) else None
    with download_progress(f"weights {config.restore.model}", enabled=not args.quiet) as fetch_progress:
        report = run_pipeline(args.input, args.output, config, progress=progress, fetch_progress=fetch_progress)
    log.info(
        "%s: %d frames in, %d out, %d dropped, %.1f fps",
        args.output,
        report.frames_in,
        report.frames_out,
        report.dropped,
        report.fps,
    )
    if args.stats_json is not None:
        write_stats(args.stats_json, report)
    if not args.quiet and progress is None:  # no bar was drawn: one line says what happened
        print(summary_line(report, config.annotate), file=sys.stderr)
    return 0
