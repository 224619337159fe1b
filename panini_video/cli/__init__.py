"""The ``panini-video`` command: ``panini-video IN OUT [options]`` or a subcommand.

Subcommands live one per module (``faces``, ``weights``, ``bench``); each module has
``build_parser(prog) -> ArgumentParser`` and ``run(args) -> int``. Only this package turns
``PaniniError`` into exit codes.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from panini_video import outputs
from panini_video.cli.signals import ignore_stop_signals, stop_on_signals
from panini_video.errors import Interrupted, PaniniError

log = logging.getLogger(__name__)

SUBCOMMANDS = {
    "faces": "panini_video.cli.faces",
    "weights": "panini_video.cli.weights",
    "bench": "panini_video.cli.bench",
    "batch": "panini_video.cli.batch",
    "verify": "panini_video.cli.verify",
}
USAGE = """usage: panini-video IN OUT [options]        restore the faces of a video
       panini-video faces IN... [--json PATH|-]  what the pipeline sees
       panini-video weights fetch|import|list    manage model and detector weights
       panini-video batch INPUT... --out DIR     many files, resumable (--status DIR)
       panini-video verify IN OUT [--stats PATH] an output checked against its input
       panini-video bench model|io|faces|pipeline|stability ...
Run 'panini-video --help' or 'panini-video COMMAND --help' for the options."""
# Appended to the main command's --help: argparse there knows only ``IN OUT``.
COMMANDS_HELP = """commands:
  faces IN...        what the pipeline sees: the faces found and tracked in photos and videos
  weights ACTION     fetch, import and list the Panini-Net and RetinaFace weights
  bench NAME         benchmarks: model, io, faces, pipeline, stability, live, batch, gpu
  batch INPUT...     many files into --out DIR, resumable after any stop; --status DIR, --ray
  verify IN OUT      frames, timestamps, audio and the samples outside the faces compared (--stats PATH)
Run 'panini-video COMMAND --help' for a command's options."""


def version() -> str:
    """The installed distribution's version (from its metadata, not a copy in the code)."""
    try:
        return importlib.metadata.version("panini-video")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


def setup_logging(verbosity: int) -> None:
    """-q: errors only; default: warnings; -v: info; -vv: debug."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE, file=sys.stderr)
        return 2
    if args[0] in ("-V", "--version"):
        print(f"panini-video {version()}")
        return 0
    if args[0] in ("-h", "--help"):
        parser = importlib.import_module("panini_video.cli.run").build_parser("panini-video")
        print(parser.format_help().rstrip("\n") + "\n\n" + COMMANDS_HELP)
        return 0
    if args[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[args[0]])
        parser = module.build_parser(f"panini-video {args[0]}")
        rest = args[1:]
    else:
        module = importlib.import_module("panini_video.cli.run")
        parser = module.build_parser("panini-video")
        rest = args
    ns = parser.parse_args(rest)
    setup_logging(getattr(ns, "verbose", 0) - (1 if getattr(ns, "quiet", False) else 0))
    written = len(outputs.committed)
    with stop_on_signals():
        try:
            return int(module.run(ns) or 0)
        except KeyboardInterrupt as exc:  # a signal (see cli.signals), or Ctrl-C outside its handler
            return _interrupted(exc, outputs.committed[written:])
        except PaniniError as exc:
            print(f"panini-video: error: {exc}", file=sys.stderr)
            log.debug("details", exc_info=True)
            return exc.exit_code


def _interrupted(exc: KeyboardInterrupt, written: list[Path]) -> int:
    """Say what a signal left (the outputs already complete, or none) and return its exit code."""
    if written:
        names = ", ".join(str(p) for p in written)
        print(f"panini-video: {exc or 'interrupted'} after {names} was written complete", file=sys.stderr)
    else:
        print(f"panini-video: {exc or 'interrupted'}; no output was written", file=sys.stderr)
    return exc.exit_code if isinstance(exc, Interrupted) else Interrupted.exit_code


def console_main() -> None:
    """The console script: ``main``, then an exit that native threads still stopping cannot abort.

    A stage thread still inside torch or FFmpeg when the interpreter finalises would be unwound
    through C++ frames that do not allow it (a native abort, exit 134); with every output already
    committed or removed, leaving with ``os._exit`` skips that.
    """
    code: int | None = None
    try:
        with stop_on_signals(restore=False):  # from the first import on, not only once the command runs
            code = main()
            ignore_stop_signals()  # the work is over: a late signal changes nothing now
    except KeyboardInterrupt as exc:  # a signal before main() had its own handlers in place
        if code is None:
            code = _interrupted(exc, [])
    assert code is not None
    sys.stdout.flush()
    sys.stderr.flush()
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
    if others:
        logging.shutdown()
        os._exit(code)
    sys.exit(code)
