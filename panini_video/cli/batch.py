"""``panini-video batch INPUT... --out DIR``: restore the faces of many files, resumable after any stop.

Every option of the main command (``panini-video --help``) is accepted and applies to each file;
the preset defaults to ``archival``. The ledger (``DIR/.panini-batch.sqlite``) remembers each
file: a batch started again skips the done files, redoes the ones a killed run left unfinished,
retries failed ones while attempts remain, and redoes done ones whose input or settings changed.
``batch --status DIR`` prints the ledger's summary.

Exit codes: 0 every file done (or skipped), 5 some files failed (the summary and ``--status`` say
why), 2 bad options, 4 the output folder or ledger unusable, 6 weights, 128+N stopped by signal N
(the files in progress discarded, their rows back to queued).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from panini_video import outputs
from panini_video.batch.inputs import DEFAULT_OUT_NAME, check_template
from panini_video.batch.ledger import Ledger, ledgers_in
from panini_video.batch.session import BatchOptions, BatchSummary, run_batch
from panini_video.batch.settings import batch_config, output_settings, settings_hash, weights_label
from panini_video.batch.shard import parse_shard
from panini_video.batch.worker import FileJob, FileResult
from panini_video.cli import run as run_cli
from panini_video.errors import Interrupted, UsageError

log = logging.getLogger(__name__)

DEFAULT_PIPELINE = "archival"
STAND_INS = ("IN", "OUT")  # fill the main command's positionals while its parser reads its options
EPILOG = """Every option of the main command applies to each file (panini-video --help lists them); the
preset defaults to 'archival'. INPUT: a file, a folder (searched recursively; videos recognised
by their content too), a glob ('tapes/**/*.avi', quoted) or @LIST (a file of paths, one a line).
Give --ray after the INPUTs or as --ray=ADDRESS.
exit codes: 0 every file done or skipped, 5 some failed (see --status), 2 bad options,
4 output folder or ledger unusable, 6 weights, 128+N stopped by signal N."""


_shard = run_cli.flag_type(parse_shard)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class BatchParser(argparse.ArgumentParser):
    """The batch's own options, plus every option of the main command (parsed by its parser).

    The main command's parser reads its options first (with stand-ins for its IN and OUT), so a
    value such as ``--crf 17`` is never taken for an INPUT; what it does not know is the batch's.
    """

    def main_parser(self) -> argparse.ArgumentParser:
        parser = run_cli.build_parser(
            self.prog, file_report=False
        )  # --report is the batch's (file reports: --file-reports)
        parser.set_defaults(pipeline=None)  # None: not given, the batch's own default applies
        return parser

    def format_help(self) -> str:
        main = self.main_parser().format_help()
        options = main.split("\n\n", 2)[-1] if "\n\n" in main else main
        return super().format_help().rstrip("\n") + "\n\nthe main command's options, applied to each file:\n" + options

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        argv = list(sys.argv[1:] if args is None else args)
        if any(a in ("-h", "--help") for a in argv):
            self.print_help()
            self.exit(0)
        main_ns, rest = self.main_parser().parse_known_args([*STAND_INS, *argv])
        # the main command's positionals may take several values (OUT...): the INPUTs that came
        # first in argv land behind the stand-ins there; they go back in front of the rest
        taken: list[str] = []
        for dest in ("input", "output"):
            value = getattr(main_ns, dest, None)
            taken += value if isinstance(value, list) else [] if value is None else [value]
        ns = super().parse_args([*taken[len(STAND_INS) :], *rest], namespace)
        ns.main = main_ns
        ns.verbose, ns.quiet = main_ns.verbose, main_ns.quiet
        if ns.status is None and not ns.inputs:
            self.error("give INPUT... --out DIR, or --status DIR")
        if ns.status is None and ns.out is None:
            self.error("--out DIR is required: the folder the outputs (and the ledger) go to")
        return ns

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = BatchParser(
        prog=prog,
        usage=f"{prog} INPUT... --out DIR [options]\n       {prog} --status DIR [--json]",
        description="Restore the faces of many videos; resumable after any stop; on one machine or a Ray cluster.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        add_help=False,
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="files, folders, globs or @LIST")
    parser.add_argument("--out", type=Path, metavar="DIR", help="the output folder (made when missing)")
    parser.add_argument(
        "--out-name",
        default=DEFAULT_OUT_NAME,
        metavar="TEMPLATE",
        help="output path under DIR from {folder} {stem} {suffix} {name} {input} (default: %(default)s)",
    )
    parser.add_argument("--ledger", type=Path, metavar="PATH", help="the ledger (default: DIR/.panini-batch.sqlite)")
    parser.add_argument("--jobs", type=_positive, default=1, metavar="N", help="files at a time per device (default 1)")
    parser.add_argument(
        "--retries", type=_count, default=2, metavar="N", help="tries after a file's first failure (default 2)"
    )
    parser.add_argument("--shard", type=_shard, metavar="I/N", help="only the I-th (from 0) of N shares of the files")
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run on a Ray cluster (no ADDRESS: a local one; 'auto': the one this machine belongs to)",
    )
    parser.add_argument(
        "--gpus-per-file", type=float, metavar="G", help="Ray: GPU share per actor (default 1; 0.25: four per GPU)"
    )
    parser.add_argument("--report", metavar="PATH|-", help="write the batch's summary and rows as JSON")
    parser.add_argument(
        "--file-reports",
        choices=("json", "html"),
        help="each output's provenance report beside it (OUT.report.json or .html: input hashes, settings, "
        "models, tracks, verification)",
    )
    parser.add_argument("--status", type=Path, metavar="DIR", help="print the summary of DIR's ledger and exit")
    parser.add_argument("--json", action="store_true", help="with --status: the summary as JSON")
    return parser


# -- status -----------------------------------------------------------------------------------------


def status(folder: Path, ledger: Path | None, as_json: bool) -> int:
    paths = [ledger] if ledger is not None else ledgers_in(folder)
    if not paths:
        raise UsageError(f"{folder}: no batch ledger here (.panini-batch.sqlite); give the batch's --out folder")
    summaries = []
    for path in paths:
        with Ledger(path, readonly=True) as db:
            summaries.append(BatchSummary(db.rows(), settings=db.meta("settings") or "", ledger=str(path)))
    if as_json:
        data = [s.to_dict() for s in summaries]
        for d in data:
            d.pop("this_run")
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2, default=str))
        return 0
    for s in summaries:
        print(status_text(s))
    return 0


def _why(path: str, error: str | None) -> str:
    """The error without the path in front (the line names the file already)."""
    text = error or "failed"
    return text[len(path) + 2 :] if text.startswith(f"{path}: ") else text


def status_text(s: BatchSummary) -> str:
    d = s.to_dict()
    lines = [
        f"{d['ledger']}: {d['files']} files: {d['done']} done, {d['failed']} failed, {d['skipped']} skipped, "
        f"{d['queued']} queued, {d['running']} running",
        f"  done: {d['frames']} frames, {d['faces']} faces, {d['seconds'] / 60:.1f} min of processing",
    ]
    for r in s.failed:
        tries = f"{r.attempts} attempt{'s' if r.attempts != 1 else ''}"
        lines.append(f"  failed ({tries}): {r.path}: {_why(r.path, r.error)}")
    return "\n".join(lines)


# -- progress -----------------------------------------------------------------------------------------


class Display:
    """Files done / failed / remaining with an ETA, and each running file's frames under it (a terminal);
    off a terminal one line per file; nothing with -q."""

    def __init__(self, total: int, quiet: bool, jobs: int) -> None:
        from panini_video.cli.progress import ProgressBar

        self.bar_wanted = ProgressBar.wanted(quiet)
        self.lines = not quiet and not self.bar_wanted
        self.total, self.done, self.failed = total, 0, 0
        self._lock = threading.Lock()
        self._files: Any = None
        self._bars: dict[str, Any] = {}
        self._free = list(range(1, jobs + 1))
        self._slot: dict[str, int] = {}

    def _ensure(self) -> None:
        if self.bar_wanted and self._files is None:
            from tqdm import tqdm

            self._files = tqdm(total=self.total, desc="files", unit="file", file=sys.stderr, position=0)

    def _postfix(self) -> None:
        if self._files is not None:
            left = self.total - self.done - self.failed
            self._files.set_postfix_str(f"{self.done} done, {self.failed} failed, {left} left")

    def started(self, job: FileJob, attempt: int) -> None:
        with self._lock:
            self._ensure()
            if self._files is None:
                return
            from tqdm import tqdm

            slot = self._free.pop(0) if self._free else len(self._slot) + 1
            self._slot[job.input] = slot
            name = Path(job.input).name
            self._bars[job.input] = tqdm(
                desc=name[:40], unit="frame", file=sys.stderr, position=slot, leave=False, total=None
            )
            self._postfix()

    def frames(self, job: FileJob, done: int, total: int | None) -> None:
        with self._lock:
            bar = self._bars.get(job.input)
            if bar is None:
                return
            if total is not None and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

    def finished(self, result: FileResult, retrying: bool) -> None:
        with self._lock:
            bar = self._bars.pop(result.job.input, None)
            if bar is not None:
                bar.close()
            slot = self._slot.pop(result.job.input, None)
            if slot is not None:
                self._free.append(slot)
                self._free.sort()
            if result.interrupted or retrying:
                if retrying and self.lines:
                    print(f"panini-video batch: retrying {result.job.input}: {result.error}", file=sys.stderr)
                return
            if result.ok:
                self.done += 1
            else:
                self.failed += 1
            if self._files is not None:
                self._files.update(1)
                self._postfix()
            elif self.lines:
                n = self.done + self.failed
                what = (
                    f"done, {result.frames} frames in {result.seconds:.1f} s -> {result.job.output}"
                    if result.ok
                    else f"failed: {_why(result.job.input, result.error)}"
                )
                print(f"[{n}/{self.total}] {result.job.input}: {what}", file=sys.stderr)

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
            if self._files is not None:
                self._files.close()
                self._files = None


def summary_text(s: BatchSummary) -> str:
    d = s.to_dict()
    r = d["this_run"]
    rate = f", {r['done'] / r['wall_s'] * 3600:.0f} files/h" if r["wall_s"] > 0 and r["done"] else ""
    lines = [
        f"panini-video batch: {d['done']} done, {d['failed']} failed, {d['skipped']} skipped of {d['files']} files; "
        f"{d['frames']} frames, {d['faces']} faces",
        f"  this run: {r['done']} done, {r['failed']} failed, {r['retried']} retried in {r['wall_s']:.1f} s{rate}",
    ]
    for row in s.failed:
        lines.append(f"  failed: {row.path}: {_why(row.path, row.error)}")
    return "\n".join(lines)


# -- the command ------------------------------------------------------------------------------------------


def config_from(args: argparse.Namespace) -> Any:
    """The run configuration of every file: the preset (archival by default), then the main options."""
    from panini_video.config import load_config

    main = args.main
    if main.stats_json is not None:
        raise UsageError("--stats-json is per file; a batch writes --report PATH (and keeps every file's figures)")
    overrides = run_cli.overrides_from(main)
    overrides["io"]["file_report"] = args.file_reports  # type: ignore[index]
    config = load_config(main.pipeline or DEFAULT_PIPELINE, overrides)
    if config.runtime.backpressure == "drop-oldest":
        raise UsageError("drop-oldest backpressure drops frames; a batch of files takes --backpressure block")
    from panini_video.restore.executor import resolve_device

    resolve_device(config.restore.device)
    if config.detect.device is not None:
        resolve_device(config.detect.device)
    return batch_config(config)


def run(args: argparse.Namespace) -> int:
    if args.status is not None:
        return status(args.status, args.ledger, args.json)
    from panini_video.cli import version

    check_template(args.out_name)
    config = config_from(args)
    overwrite = run_cli.overwrite_mode(args.main)
    if args.report is not None and args.report != "-":
        outputs.check_outputs([outputs.Output(args.report, "--report")], [], "overwrite")
    options = BatchOptions(
        inputs=tuple(args.inputs),
        out_dir=args.out,
        out_name=args.out_name,
        ledger=args.ledger,
        shard=args.shard,
        retries=args.retries,
        overwrite=overwrite,
        codec=config.io.codec,
    )
    if args.ray is not None:
        from panini_video.batch.ray_runner import RayExecutor

        label = weights_label(config)
        settings = output_settings(config, label, version())
        factory: Any = lambda: RayExecutor(  # noqa: E731
            config, address=args.ray or None, jobs=args.jobs, gpus=args.gpus_per_file
        )
    else:
        from panini_video.batch.runner import ThreadExecutor
        from panini_video.batch.worker import FileWorker
        from panini_video.cli.progress import download_progress

        worker = FileWorker(config)
        with download_progress(f"weights {config.restore.model}", enabled=not args.quiet) as fetch_progress:
            worker.load(fetch_progress)  # once for every file; a missing file fails now, before the batch
        label = worker.weights_label or weights_label(config)
        settings = output_settings(config, label, version())
        factory = None
    digest = settings_hash(settings)
    display: Display | None = None

    class _Events:  # the display, made once the number of files to run is known
        def started(self, job: FileJob, attempt: int) -> None:
            if display is not None:
                display.started(job, attempt)

        def frames(self, job: FileJob, done: int, total: int | None) -> None:
            if display is not None:
                display.frames(job, done, total)

        def finished(self, result: FileResult, retrying: bool) -> None:
            if display is not None:
                display.finished(result, retrying)

    events = _Events()

    def make_executor(files: int) -> Any:
        nonlocal display
        display = Display(files, args.quiet, args.jobs)
        if factory is not None:
            return factory()
        return ThreadExecutor(worker, args.jobs, events)

    try:
        summary = run_batch(
            options, digest, make_executor, events, {"settings_json": json.dumps(settings, sort_keys=True, default=str)}
        )
    except KeyboardInterrupt as exc:
        if display is not None:
            display.close()
        code = exc.exit_code if isinstance(exc, Interrupted) else Interrupted.exit_code
        print(
            f"panini-video batch: {exc or 'interrupted'}; the files in progress were discarded and are queued again "
            "(start the same command to resume)",
            file=sys.stderr,
        )
        return code
    finally:
        if display is not None:
            display.close()
    if args.report is not None:
        text = json.dumps(summary.to_dict(), indent=2, default=str) + "\n"
        if args.report == "-":
            sys.stdout.write(text)
        else:
            outputs.write_text(args.report, text, option="--report")
    if not args.quiet:
        print(summary_text(summary), file=sys.stderr)
    return 0 if summary.complete else 5
