"""``panini-video verify IN OUT [--stats PATH] [--json]``: is OUT a faithful restoration of IN?

Decodes both files in their own pixel formats and compares frames, timestamps, audio packets
and, with the run's ``--stats-json`` file, the samples outside the faces (``panini_video.verify``).
Exit 0 when every check passed or could not be made (said with the reason), 5 when one failed.
"""

from __future__ import annotations

import argparse
import json
import sys

from panini_video.errors import ProcessingError

EPILOG = """checks: frames (counts), timestamps (each output frame within half a frame of its input frame),
audio (packets and duration per stream; a copied stream must match exactly, bytes included), and with
--stats the samples outside the paste regions (lossless output: must be 0; lossy: count and PSNR, as
information). What cannot be compared (deinterlaced run, other pixel format or size) says why.
exit codes: 0 verified, 2 bad options or stats, 3 an input cannot be read, 5 a check failed."""


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Compare a restored output with its input: frames, timestamps, audio, non-face samples.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", metavar="IN", help="the video the output was made from")
    parser.add_argument("output", metavar="OUT", help="the restored video")
    parser.add_argument("--stats", metavar="PATH", help="the --stats-json file of the run that made OUT")
    parser.add_argument("--json", action="store_true", help="print the verification as JSON on stdout")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-v: a line per check)")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only")
    return parser


def run(args: argparse.Namespace) -> int:
    from panini_video.verify import load_stats, verify_files

    stats = load_stats(args.stats) if args.stats is not None else None
    result = verify_files(args.input, args.output, stats)
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    elif not args.quiet:
        print(result.summary())
    sys.stdout.flush()
    if not result.ok:
        raise ProcessingError(f"{args.output}: verification failed: " + "; ".join(result.failures))
    return 0
