"""``panini-video IN OUT [options]``: restore the faces of one video.

The pipeline preset (``--pipeline``, default ``default``) sets every option; flags given on the
command line override it. Exit codes come from the typed errors (see ``panini_video.errors``):
0 done, 2 bad options, 3 bad input, 4 output not writable, 5 a stage failed, 6 weights,
130 interrupted (Ctrl-C or SIGTERM). On any failure the output is not created.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, get_args, get_type_hints

from panini_video.config import Backpressure, DetectConfig, DreMode, Precision, load_config
from panini_video.errors import Interrupted, OutputError, UsageError
from panini_video.runtime.pipeline import RunReport, run_pipeline, same_file

log = logging.getLogger(__name__)

DEFAULT_PIPELINE = "default"
EPILOG = """exit codes: 0 done, 2 bad options, 3 bad input, 4 output not writable, 5 a stage failed,
6 weights missing or mismatched, 130 interrupted. Presets: default, archival, live, preview, fast
(panini_video/pipelines/*.toml), or a TOML file of your own."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _unit_float(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def add_face_options(parser: argparse.ArgumentParser) -> None:
    """The detection, tracking and face-selection flags (shared with ``panini-video faces``)."""
    # Every option defaults to None: the preset's value stands unless the flag is given.
    g = parser.add_argument_group("detection and tracking")
    g.add_argument("--detector", choices=get_args(get_type_hints(DetectConfig)["detector"]))
    g.add_argument("--detector-weights", metavar="PATH", help="RetinaFace weights (default: the cache)")
    g.add_argument("--det-threshold", type=_unit_float, metavar="P", help="detection confidence threshold")
    g.add_argument("--det-size", type=_positive_int, metavar="PX", help="longest side the detector sees")
    g.add_argument("--detect-every", type=_positive_int, metavar="N", help="detect every N frames, track between")
    g.add_argument("--smooth", type=_non_negative_float, metavar="S", help="landmark smoothing strength; 0: off")
    g = parser.add_argument_group("which faces")
    g.add_argument("--max-faces", type=_positive_int, metavar="N", help="at most N faces per frame, largest first")
    g.add_argument("--min-face-size", type=_non_negative_float, metavar="PX", help="skip faces less tall than this")
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
    parser.add_argument("--stats-json", metavar="PATH", help="write the run's figures (per stage) as JSON")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only, no progress bar")
    # Every option below defaults to None: the preset's value stands unless the flag is given.
    g = parser.add_argument_group("output encoding")
    g.add_argument("--codec", help="encoder (default: from the extension: libx264, libvpx-vp9)")
    g.add_argument("--crf", type=int, help="quality; lower is better and bigger (x264 default 23)")
    g.add_argument("--preset", help="x264 speed preset (ultrafast ... veryslow)")
    g.add_argument("--pix-fmt", help="pixel format of the output (default yuv420p)")
    add_face_options(parser)
    g = parser.add_argument_group("restoration")
    g.add_argument("--model", help="mfr | sr | tiny | PATH to a .safetensors file")
    g.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    g.add_argument("--precision", choices=get_args(Precision))
    g.add_argument("--batch-size", type=_positive_int, metavar="N", help="faces per model call")
    g.add_argument("--dre-mode", choices=get_args(DreMode), help="one degradation code per track, or per frame")
    g.add_argument("--dre-ema", type=_unit_float, metavar="A", help="how fast a track's code follows; 0 freezes it")
    g.add_argument("--upscale", type=_positive_int, metavar="K", help="output size factor")
    g.add_argument("--color-match", action=argparse.BooleanOptionalAction, help="match restored faces' colours")
    g.add_argument("--annotate", action=argparse.BooleanOptionalAction, help="draw the faces found; no restoration")
    g = parser.add_argument_group("runtime")
    g.add_argument("--queue-size", type=_positive_int, metavar="N", help="frames waiting between two stages")
    g.add_argument("--backpressure", choices=get_args(Backpressure), help="block (files) or drop-oldest (live)")
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, Any] | Any]:
    """The flags as ``{section: {key: value}}``; None (flag not given) leaves the preset's value."""
    return {
        "io": {"codec": args.codec, "crf": args.crf, "preset": args.preset, "pix_fmt": args.pix_fmt},
        **face_overrides(args),
        "blend": {"color_match": args.color_match},
        "restore": restore_overrides(args),
        "runtime": {"queue_size": args.queue_size, "backpressure": args.backpressure},
        "annotate": args.annotate,
    }


RESTORE_FLAGS = ("model", "device", "precision", "batch_size", "dre_mode", "dre_ema", "upscale")


def restore_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The restoration flags as ``{key: value}`` (a parser without some of them leaves those as None)."""
    return {name: getattr(args, name, None) for name in RESTORE_FLAGS}


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C: every stage stops, the output is not created."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted("terminated (SIGTERM); the output was not written")

    previous: Callable[[int, FrameType | None], Any] | int | None = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_stats(path: str, report: RunReport) -> None:
    """The run's figures as JSON (``-``: stdout)."""
    text = json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the stats to {path}: {exc.strerror or exc}") from exc


def run(args: argparse.Namespace) -> int:
    from panini_video.cli.progress import ProgressBar  # tqdm only when the command runs

    if same_file(args.input, args.output):
        raise UsageError(f"IN and OUT are the same file ({args.output}); choose another output path")
    config = load_config(args.pipeline, overrides_from(args))
    progress = ProgressBar() if ProgressBar.wanted(args.quiet) else None
    with sigterm_as_interrupt():
        report = run_pipeline(args.input, args.output, config, progress=progress)
    log.info(
        "%s: %d frames in, %d out, %d dropped, %.1f fps",
        args.output,
        report.frames_in,
        report.frames_out,
        report.dropped,
        report.fps,
    )
    if args.stats_json:
        write_stats(args.stats_json, report)
    return 0
