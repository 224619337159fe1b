"""``panini-video weights fetch|import|init|list``: get, convert and inspect model and detector weights."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from panini_video import cache, outputs
from panini_video.cli.run import add_overwrite_options, overwrite_mode
from panini_video.models.keys import LISTED

DESCRIPTION = "Get, convert and inspect Panini-Net and RetinaFace weights (in $PANINI_VIDEO_HOME or the user cache)."

EPILOG = """examples:
  panini-video weights fetch mfr                    download the official MFR model and convert it
  panini-video weights fetch retinaface-mobilenet   the default face detector
  panini-video weights import panini_sr_latest.pth  convert a checkpoint downloaded by hand
  panini-video weights import Resnet50_Final.pth    a RetinaFace file goes where the detector looks
  panini-video weights init tiny                    seeded random tiny weights (tests and demos)
  panini-video weights list                         what the cache holds

The RetinaFace MobileNet weights ship with the package: the default detector needs no fetch."""


def build_parser(prog: str) -> argparse.ArgumentParser:
    from panini_video.models.fetch import FETCHABLE, RANDOM_VARIANTS

    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a flag given before the action is not reset by the sub-parser's default.
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="errors only")
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.set_defaults(verbose=0, quiet=False)
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("fetch", parents=[common], help="download weights into the cache")
    p.add_argument("name", choices=FETCHABLE, help="a model variant or a detector")
    p.add_argument("--force", action="store_true", help="download again even if the cache has the file")
    p = sub.add_parser("import", parents=[common], help="convert an official checkpoint into the cache")
    p.add_argument("file", type=Path, help="an official .pth checkpoint, a state_dict, or a RetinaFace .pth")
    p.add_argument("--variant", choices=LISTED, help="default: told from the checkpoint's keys")
    p.add_argument("--output", type=Path, help="write here instead of the cache (kept if it exists, unless -y)")
    add_overwrite_options(p)
    p = sub.add_parser("init", parents=[common], help="write seeded random weights (tiny only)")
    p.add_argument("variant", choices=RANDOM_VARIANTS, help="the variant")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--output", type=Path, help="write here instead of the cache")
    add_overwrite_options(p)
    p.add_argument("--force", action="store_true", dest="overwrite", help="the same as -y")
    sub.add_parser("list", parents=[common], help="list the weights in the cache")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        return _fetch(args)
    if args.action == "import":
        return _import(args)
    if args.action == "init":
        return _init(args)
    return _list()


def _fetch(args: argparse.Namespace) -> int:
    from panini_video.cli.progress import download_progress
    from panini_video.models.fetch import fetch

    with download_progress(args.name, enabled=not args.quiet) as progress:
        path = fetch(args.name, force=args.force, progress=progress)
    print(f"{args.name}: {path}")
    return 0


def _import(args: argparse.Namespace) -> int:
    """A RetinaFace state_dict goes to the detector's place; anything else is a Panini-Net checkpoint."""
    from panini_video.faces.retinaface_weights import guess_backbone, import_detector, tensors_of
    from panini_video.models.checkpoint import import_content, read_checkpoint

    if args.output is not None and not _check_dest(args, args.output, [args.file]):
        return 0
    outputs.remove_stale_temps([cache.cache_dir() / "models", cache.cache_dir() / "detectors"])
    content = read_checkpoint(args.file)
    state = tensors_of(content) if args.variant is None else None
    backbone = guess_backbone(state) if state is not None else None
    if state is not None and backbone is not None:
        path = import_detector(args.file, state, backbone, args.output)
        print(f"imported {args.file} (RetinaFace {backbone}) -> {path}")
        return 0
    path = import_content(content, str(args.file), args.variant, args.output)
    print(f"imported {args.file} -> {path}")
    return 0


def _init(args: argparse.Namespace) -> int:
    from panini_video.models.fetch import init_model

    dest = args.output or cache.model_path(args.variant)
    if args.output is None:
        dest.parent.mkdir(parents=True, exist_ok=True)
    if not _check_dest(args, dest, []):
        return 0
    path = init_model(args.variant, seed=args.seed, dest=dest)
    print(f"random {args.variant} weights (seed {args.seed}; a stand-in that restores nothing) -> {path}")
    return 0


def _check_dest(args: argparse.Namespace, dest: Path, inputs: list[Path]) -> bool:
    """The output rule (panini_video.outputs) for a weight file; False: it exists and -n skips it."""
    if not outputs.check_outputs([outputs.Output(str(dest), "--output")], inputs, overwrite_mode(args)):
        print(f"{dest} exists; skipped (-n)")
        return False
    outputs.remove_stale_temps([dest.parent])
    return True


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One weight file in the cache, as ``weights list`` shows it."""

    kind: str  # "model" or "detector"
    name: str  # the variant (from the file's config) or the detector name
    size: int  # bytes
    path: Path
    note: str = ""  # parameters, or why the file is not usable


def cache_entries() -> list[CacheEntry]:
    """What the cache holds: model files described from their metadata, detector files by name."""
    from panini_video.models.fetch import DETECTORS

    root = cache.cache_dir()
    entries = [_model_entry(p) for p in sorted((root / "models").glob("*.safetensors"))]
    for name, spec in DETECTORS.items():
        path = cache.detector_path(spec.backbone)
        if path.is_file():
            size = path.stat().st_size
            note = "" if size == spec.size else f"size differs from the release ({spec.size} bytes)"
            entries.append(CacheEntry("detector", name, size, path, note))
    partial = sorted(root.glob("**/*.part"))
    entries += [CacheEntry("partial", p.name, p.stat().st_size, p, "unfinished download") for p in partial]
    return entries


def _model_entry(path: Path) -> CacheEntry:
    """Read only the safetensors header: the config says the variant, the shapes the size."""
    from safetensors import safe_open

    from panini_video.models.config import FORMAT, VARIANTS, PaniniConfig
    from panini_video.models.serialize import weights_label

    size = path.stat().st_size
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            params = 0
            for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                count = 1
                for n in f.get_slice(key).get_shape():
                    count *= n
                params += count
        if metadata.get("format") != FORMAT:
            return CacheEntry("model", "?", size, path, f"not a panini-video file ({metadata.get('format')!r})")
        config = PaniniConfig.from_json(metadata.get("config", ""))
    except Exception as exc:  # a broken file is listed, not fatal
        return CacheEntry("model", "?", size, path, f"unreadable: {exc}")
    name = next((k for k, v in VARIANTS.items() if v == config), f"custom {config.in_size}->{config.out_size}")
    label = weights_label(metadata)
    note = f"{params / 1e6:.1f} M values" + (f", {label}" if label.startswith("random") else "")
    return CacheEntry("model", name, size, path, note)


def _list() -> int:
    entries = cache_entries()
    print(f"cache: {cache.cache_dir()}")
    if not entries:
        print(
            "(empty) get weights with 'panini-video weights fetch NAME' or 'weights import FILE'; "
            "the default detector ships with the package"
        )
        return 0
    rows = [("kind", "name", "size", "", "path")]
    rows += [(e.kind, e.name, f"{e.size / 2**20:.1f} MiB", e.note, str(e.path)) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    return 0
