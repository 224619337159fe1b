"""Which files a batch processes, in what order, and where each one's output goes.

An INPUT is a file, a folder (searched recursively), a glob (``footage/**/*.mov``) or ``@list.txt``
(one path per line; blank lines and ``#`` comments ignored; relative paths from the list's
folder). Files named directly, by a glob or in a list are always taken: when one is not a video
its row fails with the reason. In a folder, a file is taken when it has a video extension or when
FFmpeg recognises it as a video by its content (a ``.dat`` capture, a tape transfer with no
extension); other files are listed as skipped with the reason (``notes.txt``: not a video), so the
ledger accounts for every file of the folder. Still images are not videos here.

Order: inputs in the order given, each one's files sorted by their relative path, duplicates
dropped at their first place; the same arguments give the same list on every machine, which is
what ``--shard`` and resuming need.

Output names: ``{folder}/{stem}{suffix}`` by default, so a folder's structure is kept under the
output folder. ``--out-name`` takes a template of ``{folder}`` (the file's folder relative to its
INPUT; empty at the top), ``{stem}``, ``{suffix}`` (the input's extension when the writer has a
muxer for it, else ``.mkv``, which takes every audio codec), ``{name}`` (the input's file name) and
``{input}`` (the INPUT's own name).

The suffix follows the output's codec when one is set (``io.codec``; the archival preset's
FFV1): the input's extension when that codec may go in it, else the first container the codec
may go in (``io.encoder.CODEC_CONTAINERS``): FFV1 from an ``.mp4`` is written as ``.mkv``,
ProRes as ``.mov``, x264 from a ``.mov`` stays ``.mov``.
"""

from __future__ import annotations

import glob
import logging
import os
import string
from dataclasses import dataclass
from pathlib import Path

from panini_video.errors import InputError, UsageError
from panini_video.io.encoder import CODEC_ALIASES, CODEC_CONTAINERS, CONTAINERS

log = logging.getLogger(__name__)

DEFAULT_OUT_NAME = "{folder}/{stem}{suffix}"
FIELDS = ("folder", "stem", "suffix", "name", "input")
FALLBACK_SUFFIX = ".mkv"
# extensions of video containers and elementary streams: taken in a folder without a look inside
_EXTENSIONS = (
    ".mp4 .m4v .mov .qt .mkv .webm .avi .mpg .mpeg .mpe .m2v .ts .mts .m2ts .vob .wmv .asf .flv .f4v .3gp .3g2 "
    ".ogv .ogg .dv .dif .mxf .nut .y4m .h264 .264 .h265 .265 .hevc .rm .rmvb .divx .xvid"
)
VIDEO_EXTENSIONS = frozenset(_EXTENSIONS.split())
# FFmpeg demuxers that read still pictures or text, not video
STILL_FORMATS = frozenset({"image2", "tty", "gif", "apng", "webp_pipe"})


@dataclass(frozen=True, slots=True)
class BatchInput:
    """One file of the batch.

    path: absolute, as found (not through links, so the ledger names what the user gave);
    rel: its path relative to the INPUT that found it (a folder's structure), else its name;
    root: the INPUT as given; skip: why a folder's file is not a video (None: process it).
    """

    path: Path
    rel: Path
    root: str
    skip: str | None = None

    @property
    def key(self) -> str:
        """The name the batch knows the file by (its ledger row and its shard): the absolute path."""
        return str(self.path)


def _is_magic(text: str) -> bool:
    return glob.has_magic(text)


def _glob_base(pattern: str) -> Path:
    """The folder of a glob above its first wildcard: matches keep their path below it."""
    parts = Path(pattern).parts
    base: list[str] = []
    for part in parts:
        if _is_magic(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")


def _list_entries(list_file: Path) -> list[str]:
    try:
        text = list_file.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"@{list_file}: cannot be read ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise InputError(f"@{list_file}: not a UTF-8 text list of paths") from e
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line).expanduser()
        entries.append(str(path if path.is_absolute() else list_file.parent / path))
    return entries


def sniff_video(path: Path) -> str | None:
    """None when FFmpeg reads ``path`` as a video (a container with a moving video stream), else why not.

    Only the header is read: a folder of thousands of files is scanned in seconds. The full probe
    (the first frame decoded, the index checked) comes when the file is processed.
    """
    import av

    from panini_video.io.probe import open_input

    try:
        container = open_input(path)
    except InputError:
        return "not a video file FFmpeg can read"
    try:
        if container.format.name in STILL_FORMATS or container.format.name.endswith("_pipe"):
            return f"a still image ({container.format.name}), not a video"
        videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not videos:
            return "no video stream (audio or data only)"
        return None
    finally:
        container.close()


def _folder_files(folder: Path, exclude: tuple[Path, ...]) -> list[Path]:
    """Regular files below ``folder``, hidden ones (ours: temporary files, ledgers) and ``exclude`` left out."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d) not in exclude)
        for name in filenames:
            if name.startswith("."):
                continue
            p = here / name
            if p.is_file():
                found.append(p)
    return found


def _absolute(p: Path) -> Path:
    return Path(os.path.abspath(p))


def find_inputs(specs: list[str], exclude: tuple[Path, ...] = (), sniff: bool = True) -> list[BatchInput]:
    """Every file of the INPUTs, in a deterministic order (see the module doc).

    exclude: folders not searched (the output folder, when it lies inside an input folder);
    sniff: look inside folder files without a video extension (False: they are skipped).
    Raises UsageError for an INPUT that names nothing, InputError for an unreadable list.
    """
    exclude = tuple(_absolute(e) for e in exclude)
    seen: set[Path] = set()
    out: list[BatchInput] = []

    def add(item: BatchInput) -> None:
        if item.path not in seen:
            seen.add(item.path)
            out.append(item)

    for spec in specs:
        if spec.startswith("@"):
            list_file = Path(spec[1:])
            for entry in _list_entries(list_file):
                p = _absolute(Path(entry))
                add(BatchInput(p, Path(p.name), spec))
            continue
        path = Path(spec).expanduser()
        if path.is_dir():
            root = _absolute(path)
            files = sorted(_folder_files(root, exclude), key=lambda p: p.relative_to(root).as_posix())
            for p in files:
                skip = None
                if p.suffix.lower() not in VIDEO_EXTENSIONS:
                    skip = sniff_video(p) if sniff else "no video extension"
                add(BatchInput(p, p.relative_to(root), spec, skip))
            continue
        if _is_magic(spec) and not path.exists():
            base = _glob_base(spec)
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=True))
            files = [m for m in matches if not m.is_dir()]
            if not files:
                raise UsageError(f"{spec}: the pattern matches no file")
            for m in files:
                p = _absolute(m)
                try:
                    rel = m.relative_to(base)
                except ValueError:
                    rel = Path(m.name)
                add(BatchInput(p, rel, spec))
            continue
        if not path.exists() and not path.is_symlink():
            raise UsageError(f"{spec}: no such file, folder or matching pattern")
        p = _absolute(path)
        add(BatchInput(p, Path(p.name), spec))
    return out


def check_template(template: str) -> None:
    """Refuse an ``--out-name`` with unknown fields or no file name, before any work."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise UsageError(f"--out-name {template!r}: {e}") from None
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise UsageError(f"--out-name {template!r}: unknown field {{{unknown[0]}}}; known: {', '.join(FIELDS)}")
    if template.endswith(("/", os.sep)) or not template.strip():
        raise UsageError(f"--out-name {template!r}: gives no file name; end it with a name such as {{stem}}{{suffix}}")


def output_suffix(path: Path, codec: str | None = None) -> str:
    """The output's extension for an input at ``path`` encoded with ``codec`` (None: from the extension).

    The input's extension when the writer has a muxer for it and ``codec`` may go in it; else the
    codec's first container; else ``.mkv``.
    """
    ext = path.suffix.lower()
    places = CODEC_CONTAINERS.get(CODEC_ALIASES.get(codec.lower(), codec)) if codec else None
    if places is not None:
        return path.suffix if ext in places else places[0]
    return path.suffix if ext in CONTAINERS else FALLBACK_SUFFIX


def output_path(item: BatchInput, out_dir: Path, template: str = DEFAULT_OUT_NAME, codec: str | None = None) -> Path:
    """Where ``item``'s output goes under ``out_dir`` (see the module doc); never outside it.

    codec: the output's encoder (``io.codec``), which may change the suffix (``output_suffix``).
    """
    folder = item.rel.parent.as_posix()
    fields = {
        "folder": "" if folder == "." else folder,
        "stem": item.path.stem,
        "suffix": output_suffix(item.path, codec),
        "name": item.path.name,
        "input": Path(item.root.lstrip("@")).name,
    }
    rel = Path(template.format(**fields).lstrip("/"))
    parts = [p for p in rel.parts if p not in ("", ".")]
    if ".." in parts or not parts:
        raise UsageError(f"--out-name {template!r} gives {rel} for {item.path}: outside the output folder")
    return _absolute(out_dir).joinpath(*parts)
