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
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, get_args, get_type_hints

from panini_video import outputs
from panini_video.config import (
    AssumeColorspace,
    AssumeRange,
    Backpressure,
    Deinterlace,
    DetectConfig,
    DreMode,
    FieldOrder,
    LatePolicy,
    Precision,
    RtspTransport,
    RunConfig,
    load_config,
    parse_bitrate,
    parse_reconnect,
    parse_size,
)
from panini_video.errors import UsageError
from panini_video.io.urls import (
    INPUT_SCHEMES,
    OUTPUT_SCHEMES,
    install_masking,
    is_url,
    live_input_kind,
    live_output_kind,
    mask,
)
from panini_video.outputs import Output, Overwrite
from panini_video.run.pipeline import RunReport
from panini_video.run.pipeline import run as run_source
from panini_video.run.sinks import FileSink, MultiSink, Sink
from panini_video.run.sources import FileSource, PacedSource, Source

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_PIPELINE = "default"
EPILOG = """exit codes: 0 done, 2 bad options, 3 bad input, 4 output not writable, 5 a stage failed,
6 weights missing or mismatched, 128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM);
a live run stopped by SIGINT or SIGTERM ends its stream cleanly and exits 0 (docs/live.md).
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


def flag_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A config parser (``parse_size``, ``parse_reconnect``...) as an argparse type: UsageError -> its message."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = parse.__name__  # argparse names the type in some messages
    return convert


_reconnect = flag_type(parse_reconnect)
_bitrate = flag_type(parse_bitrate)
parse_size_arg = flag_type(parse_size)


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


def build_parser(prog: str, *, file_report: bool = True) -> argparse.ArgumentParser:
    """The main command's parser; file_report: False leaves out ``--report`` (batch has its own)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Restore the faces of a video with Panini-Net; every frame, timestamp and audio packet is kept.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "input",
        metavar="IN",
        help="input: a video file, a stream URL (rtsp, rtmp, srt, udp, http(s) HLS), /dev/videoN, or - (stdin)",
    )
    parser.add_argument(
        "output",
        metavar="OUT",
        nargs="+",
        help="output file (.mp4, .mov, .mkv, .webm) or stream URL (rtsp, rtmp, srt, udp); repeat for several",
    )
    parser.add_argument(
        "--pipeline",
        metavar="NAME|FILE",
        help=f"preset or TOML file (default: {DEFAULT_PIPELINE}; live for a live input)",
    )
    parser.add_argument(
        "--stats-json", metavar="PATH|-", help="write the run's figures (per stage) as JSON (-: stdout)"
    )
    if file_report:
        parser.add_argument(
            "--report",
            metavar="PATH",
            help="write the file's provenance report after the output: JSON, or HTML for .html",
        )
    add_overwrite_options(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only, no progress bar")
    # Every option below defaults to None: the preset's value stands unless the flag is given.
    g = parser.add_argument_group("output encoding")
    g.add_argument("--codec", help="encoder (default: from the extension: libx264, libvpx-vp9)")
    g.add_argument("--crf", type=_int, help="quality; lower is better and bigger (x264: 0-51, default 23)")
    g.add_argument("--preset", help="x264 speed preset (ultrafast ... veryslow)")
    g.add_argument("--pix-fmt", help="pixel format of the output (default: the input's, where the encoder takes it)")
    g.add_argument("--profile", help="prores: proxy, lt, standard, hq, 4444, 4444xq; dnxhr: lb, sq, hq, hqx, 444")
    g.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        help="check each output file against the input when written (panini-video verify; archival: on); "
        "a failed check exits 5",
    )
    g = parser.add_argument_group("input")
    g.add_argument(
        "--deinterlace",
        choices=get_args(Deinterlace),
        help="auto: bwdif when idet finds the input interlaced (default); bwdif-field: one frame per field",
    )
    g.add_argument("--field-order", choices=get_args(FieldOrder), help="auto: idet's, else the stream's flag")
    g.add_argument("--ivtc", action=argparse.BooleanOptionalAction, help="telecined 29.97i film back to 23.976 frames")
    g.add_argument(
        "--assume-colorspace",
        choices=get_args(AssumeColorspace),
        help="what the input's samples mean when untagged (auto: bt709 from 720 lines up, else bt601); "
        "a name also overrides a wrong tag",
    )
    g.add_argument(
        "--assume-range", choices=get_args(AssumeRange), help="limited or full when untagged (auto: limited)"
    )
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
    g = parser.add_argument_group("live streams (a URL, a capture device or - as IN or OUT)")
    g.add_argument("--rtsp-transport", choices=get_args(RtspTransport), help="RTSP input transport (default tcp)")
    g.add_argument("--input-format", metavar="FMT", help="capture device format (v4l2: mjpeg, yuyv422, h264)")
    g.add_argument("--input-size", metavar="WxH", help="capture device size, e.g. 1280x720")
    g.add_argument("--input-fps", type=_float, metavar="FPS", help="capture device frame rate")
    g.add_argument(
        "--input-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an FFmpeg demuxer/protocol option for a live input (repeatable; overrides the defaults)",
    )
    g.add_argument("--open-timeout", type=_float, metavar="S", help="seconds to connect (default 10)")
    g.add_argument("--stall-timeout", type=_float, metavar="S", help="seconds without a packet = a stall (default 5)")
    g.add_argument("--reconnect", type=_reconnect, metavar="N|forever", help="reconnections allowed (default forever)")
    g.add_argument(
        "--max-latency",
        type=_float,
        metavar="MS",
        help="latency budget: a frame that would pass it once restored is not restored (default: none)",
    )
    g.add_argument("--late", choices=get_args(LatePolicy), help="a frame past --max-latency: pass unrestored or drop")
    g.add_argument("--bitrate", type=_bitrate, metavar="RATE", help="published stream bit rate (2M, 800k; default crf)")
    g.add_argument("--keyint", type=_float, metavar="S", help="seconds between keyframes when publishing (default 2)")
    g.add_argument("--stats-every", type=_float, metavar="S", help="print one line of live health every S seconds")
    g.add_argument(
        "--realtime",
        "-re",
        action="store_true",
        help="play a file input at its own rate, as a live source (implied when publishing a file to a stream URL)",
    )
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
        "io": {
            "codec": args.codec,
            "crf": args.crf,
            "preset": args.preset,
            "pix_fmt": args.pix_fmt,
            "profile": args.profile,
            "deinterlace": args.deinterlace,
            "field_order": args.field_order,
            "ivtc": args.ivtc,
            "verify": args.verify,
            "assume_colorspace": args.assume_colorspace,
            "assume_range": args.assume_range,
        },
        **face_overrides(args),
        "blend": {"color_match": args.color_match},
        "restore": restore_overrides(args),
        "runtime": {"queue_size": args.queue_size, "backpressure": args.backpressure, "max_memory": args.max_memory},
        "live": {name: getattr(args, flag, None) for name, flag in LIVE_FLAGS.items()},
        "annotate": args.annotate,
    }


LIVE_FLAGS = {  # live.KEY: the flag's dest
    "rtsp_transport": "rtsp_transport",
    "input_format": "input_format",
    "input_size": "input_size",
    "input_fps": "input_fps",
    "open_timeout": "open_timeout",
    "stall_timeout": "stall_timeout",
    "reconnect": "reconnect",
    "max_latency_ms": "max_latency",
    "late": "late",
    "bitrate": "bitrate",
    "keyint": "keyint",
    "stats_every": "stats_every",
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


def input_kind(name: str) -> str | None:
    """The live kind of an input name (``rtsp``, ``v4l2``, ``stdin``, ...), None for a file.

    A name with a scheme this tool does not read (``ftp://``) is a usage error, unless a file of
    that name exists.
    """
    kind = live_input_kind(name)
    if kind is None and is_url(name) and not Path(name).exists():
        known = ", ".join(sorted({f"{k}://" for k in INPUT_SCHEMES}))
        raise UsageError(f"{mask(name)}: not an input this tool reads; give a file, {known}, /dev/videoN or -")
    return kind


def output_kind(name: str) -> str | None:
    """The live kind of an output name (``rtsp``, ``rtmp``, ``srt``, ``udp``), None for a file."""
    kind = live_output_kind(name)
    if kind is None and is_url(name):
        known = ", ".join(sorted({f"{k}://" for k in OUTPUT_SCHEMES}))
        raise UsageError(f"{mask(name)}: not an output this tool writes; give a file or {known}")
    if name == "-":
        raise UsageError("writing the video to standard output is not supported; give a file or a stream URL")
    return kind


def summary_line(report: RunReport, annotate: bool) -> str:
    """One line for a log file or a pipe: what was done, how much, how long, where."""
    faces = report.stage_stats.get("restore", {}).get("faces") if not annotate else None
    if faces is None:
        faces = report.stage_stats.get("track", {}).get("faces")
    what = "annotated" if annotate else "restored"
    face_text = "" if faces is None else f", {faces} faces"
    line = (
        f"panini-video: {what} {report.frames_out} frames{face_text} in {report.wall_s:.1f} s "
        f"({report.fps:.1f} fps) -> {report.output}"
    )
    if report.live is not None:
        live = report.live
        lat = live["latency"]
        late = live["late"] or {}
        line += (
            f"; live: {live['frames_in']} frames in, dropped {live['dropped']['total']}, "
            f"late {late.get('late_passed', 0) + late.get('late_dropped', 0)}, latency p50/p95/p99 "
            f"{lat['p50_ms']}/{lat['p95_ms']}/{lat['p99_ms']} ms, "
            f"reconnects {live['source'].get('reconnects', 0)}"
        )
        if live["stopped_by"]:
            line += f"; stopped by {live['stopped_by']}"
    return line


def parse_input_options(pairs: list[str]) -> dict[str, str]:
    """``--input-option KEY=VALUE`` pairs as a dict (a later pair wins)."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--input-option takes KEY=VALUE, got {pair!r}")
        options[key.strip()] = value
    return options


def build_source(args: argparse.Namespace, config: RunConfig, kind: str | None, realtime: bool) -> Source:
    """The run's source: a live one for a URL, device or -, a paced file for --realtime, else the file."""
    if kind is not None:
        from panini_video.run.live_source import LiveSource

        return LiveSource(
            args.input,
            config.live,
            options=parse_input_options(args.input_option),
            decode_threads=config.io.decode_threads,
        )
    if args.input_option:
        raise UsageError("--input-option applies to a live input (a URL, a device or -); the input is a file")
    if realtime:
        return PacedSource(args.input, decode_threads=config.io.decode_threads)
    return FileSource.from_config(args.input, config.io)


def build_sink(names: list[str], config: RunConfig, live_run: bool) -> Sink:
    """One sink per output: a publisher for a URL, a recording (low-latency) in a live run, else a file."""
    sinks: list[Sink] = []
    for name in names:
        if live_run or output_kind(name) is not None:
            from panini_video.run.live_sink import LiveSink

            sinks.append(LiveSink(name, config.io, config.live))
        else:
            sinks.append(FileSink(name, config.io))
    return sinks[0] if len(sinks) == 1 else MultiSink(sinks)


def run(args: argparse.Namespace) -> int:
    from panini_video.cli.progress import ProgressBar, download_progress  # tqdm only when the command runs

    install_masking([args.input, *args.output])
    kind = input_kind(args.input)
    out_kinds = [output_kind(o) for o in args.output]
    realtime = kind is None and (args.realtime or any(k is not None for k in out_kinds))
    live_run = kind is not None or realtime
    preset = args.pipeline or ("live" if live_run else DEFAULT_PIPELINE)
    overrides = overrides_from(args)
    if kind == "stdin" and args.backpressure is None:  # a pipe's writer waits for us: nothing need be dropped
        overrides["runtime"]["backpressure"] = "block"
    config = load_config(preset, overrides)
    if config.runtime.backpressure == "drop-oldest" and not live_run:
        raise UsageError(
            f"{args.input} is a file: drop-oldest backpressure (from --backpressure or the "
            f"'{preset}' preset) would drop frames; give --backpressure block (or --realtime to play it as live)"
        )
    from panini_video.restore.executor import resolve_device

    resolve_device(config.restore.device)  # an unknown or absent device is a usage error, now
    if config.detect.device is not None:
        resolve_device(config.detect.device)
    files = [o for o, k in zip(args.output, out_kinds, strict=True) if k is None]
    targets = [Output(o, "OUT") for o in files]
    if args.stats_json is not None:  # an empty path is refused by the output rule, not ignored
        targets.append(Output(args.stats_json, "--stats-json", stdout_ok=True))
    if args.report is not None:
        if live_run or not files:
            raise UsageError("--report describes a file read into a file; this run reads or writes a live stream")
        targets.append(Output(args.report, "--report"))
    if not outputs.check_outputs(targets, [] if kind is not None else [args.input], overwrite_mode(args)):
        log.warning("%s exists; skipped (-n)", ", ".join(files))
        return 0
    if not live_run:  # a killed live run's recording stays readable under its temporary name: kept
        outputs.remove_stale_temps(Path(t.path).parent for t in targets if not t.is_stdout)
    description = "annotating" if config.annotate else "restoring"
    progress = ProgressBar(description=description) if ProgressBar.wanted(args.quiet) and not live_run else None
    source = build_source(args, config, kind, realtime)
    try:
        sink = build_sink(args.output, config, live_run)
    except BaseException:
        source.close()
        raise
    on_health = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    with download_progress(f"weights {config.restore.model}", enabled=not args.quiet) as fetch_progress:
        report = run_source(source, sink, config, progress=progress, fetch_progress=fetch_progress, on_health=on_health)
    log.info(
        "%s: %d frames in, %d out, %d dropped, %.1f fps",
        mask(report.output),
        report.frames_in,
        report.frames_out,
        report.dropped,
        report.fps,
    )
    if args.stats_json is not None:
        write_stats(args.stats_json, report)
    verified = None
    if config.io.verify and files and not live_run:  # a live run's recording is not the input's every frame
        from panini_video.verify import verify_outputs

        verified = verify_outputs(args.input, files, report.to_dict())
    if args.report is not None:  # after the output is complete: the report probes and verifies it
        from panini_video.report import build_report, write_report

        made = None if not verified else verified[0].to_dict()
        write_report(args.report, build_report(report, output_paths=files, verification=made))
    if verified:
        from panini_video.verify import require_ok

        require_ok(verified)  # after the stats and the report, which say what failed
    if not args.quiet and progress is None:  # no bar was drawn: one line says what happened
        print(summary_line(report, config.annotate), file=sys.stderr)
    return 0
