"""The one rule for every file panini-video writes: videos, stats and faces JSON, reports, weights.

Before any work, ``check_outputs`` refuses a target that

- lies in a folder that does not exist or cannot be written (tried, not guessed from mode bits);
- is a folder, a device, a FIFO or a socket (or a symlink to one): only regular files are written,
  ``-`` (standard output) only where the command documents it;
- is one of the inputs or another output of the same run, compared by device and inode, through
  symlinks and hard links, and by folder entry for files that do not exist yet;
- already exists, unless the run overwrites (``-y``) or skips (``-n``) existing outputs.

Writing: ``atomic_output`` yields a temporary name in the target's folder
(``.NAME.partial-PID-RANDOM.EXT``: the same extension, so FFmpeg picks the same muxer) and renames
it over the target only when the block completes; on any failure the temporary file is removed.
The rename replaces a symlink at the target, it never writes through it. Temporary files of a
killed run (the process named in them is gone) are removed by ``remove_stale_temps``, which each
run calls on its output folders.

``committed`` lists the targets renamed into place by this process, so a signal that arrives after
the final rename is not reported as "nothing written".
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import socket
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from panini_video.errors import OutputError, UsageError

log = logging.getLogger(__name__)

Overwrite = Literal["refuse", "overwrite", "skip"]
STDOUT = "-"

# .NAME.partial-PID-HOST-RANDOM.EXT; HOST (8 hex digits of the host name's hash) keeps a run on one
# machine from taking another machine's live temporary file in a shared folder for a dead one's
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)-(?:(?P<host>[0-9a-f]{8})-)?[0-9a-f]+(?P<ext>\.[^.]*)?$")
HOST_TAG = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]

committed: list[Path] = []  # targets this process renamed into place, in order


class OutputExistsError(OutputError, FileExistsError):
    """The output exists and the run was not told to overwrite it."""


@dataclass(frozen=True, slots=True)
class Output:
    """One file a command will write.

    option: how the user named it in messages (``OUT``, ``--stats-json``, ``--json``, ...);
    stdout_ok: ``-`` means standard output for this option.
    """

    path: str
    option: str
    stdout_ok: bool = False

    @property
    def is_stdout(self) -> bool:
        return self.stdout_ok and self.path == STDOUT

    @property
    def label(self) -> str:
        """How messages name it: the path for the main output, else the option and the path."""
        return self.path if self.option == "OUT" else f"{self.option} {self.path}"


def file_kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def identities(path: str | os.PathLike[str]) -> set[tuple[object, ...]]:
    """Keys that two names of one file share: its inode (through links) and its folder entry."""
    p = Path(path)
    keys: set[tuple[object, ...]] = set()
    try:
        st = os.stat(p)
        keys.add(("inode", st.st_dev, st.st_ino))
    except OSError:
        pass
    try:
        parent = os.stat(p.parent if str(p.parent) else ".")
        keys.add(("entry", parent.st_dev, parent.st_ino, p.name))
    except OSError:
        keys.add(("path", str(p.resolve())))
    return keys


def _check_folder(out: Output, p: Path) -> None:
    folder, label = p.parent, out.label
    if not folder.exists():
        raise OutputError(f"{label}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"{label}: {folder} is not a folder")
    probe = temp_path(p, ".probe")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as e:
        raise OutputError(f"{label}: the folder {folder} is not writable ({e.strerror or e})") from e
    os.close(fd)
    probe.unlink(missing_ok=True)


def _check_target(out: Output, p: Path, overwrite: Overwrite) -> bool:
    """False when the target exists and the run skips existing outputs."""
    label = out.label
    try:
        own = os.lstat(p)
    except FileNotFoundError:
        return True
    except OSError as e:
        raise OutputError(f"{label}: cannot be inspected ({e.strerror or e})") from e
    kind = file_kind(own.st_mode)
    if kind is None and stat.S_ISLNK(own.st_mode):
        try:
            kind = file_kind(os.stat(p).st_mode)
        except OSError:
            kind = None  # a dangling link: replacing it harms nothing
        if kind is not None:
            kind = f"a symlink to {kind}"
    if kind is not None:
        raise OutputError(f"{label}: is {kind}; panini-video writes only regular files, give a file path")
    if overwrite == "overwrite":
        return True
    if overwrite == "skip":
        return False
    raise OutputExistsError(f"{label}: exists; give -y (--overwrite) to replace it, or -n to skip existing outputs")


def check_outputs(
    outputs: Sequence[Output], inputs: Iterable[str | os.PathLike[str]] = (), overwrite: Overwrite = "refuse"
) -> bool:
    """Refuse, before any work, every output this run could not write safely; see the module doc.

    Returns False when ``overwrite`` is ``skip`` and an output exists (the run has nothing to do).
    Raises UsageError for ``-`` where it is not allowed and for an output that is an input or
    another output; OutputError (exit 4) for the rest.
    """
    seen: dict[tuple[object, ...], str] = {}
    for i in inputs:
        for key in identities(i):
            seen.setdefault(key, f"the input {i}")
    fresh = True
    for out in outputs:
        if out.is_stdout:
            continue
        if out.path == STDOUT:
            raise UsageError(f"{out.option}: '-' (standard output) is not accepted here; give a file path")
        if not out.path:
            raise UsageError(f"{out.option}: an empty path; give a file path")
        if out.path.endswith(("/", os.sep)):
            raise OutputError(f"{out.option} {out.path}: names a folder (it ends with '/'); give a file path")
        p = Path(out.path)
        keys = identities(p)
        for key in keys:
            if key in seen:
                raise UsageError(f"{out.label} is {seen[key]}; choose another path")
        seen.update(dict.fromkeys(keys, f"the output {p}" if out.option == "OUT" else out.label))
        _check_folder(out, p)
        fresh = _check_target(out, p, overwrite) and fresh
    return fresh


def temp_path(target: str | os.PathLike[str], suffix: str | None = None) -> Path:
    """A hidden name beside ``target`` that names this process; ``suffix`` defaults to the target's."""
    p = Path(target)
    ext = p.suffix if suffix is None else suffix
    return p.with_name(f".{p.name}.partial-{os.getpid()}-{HOST_TAG}-{secrets.token_hex(4)}{ext}")


def commit(temp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Rename a finished temporary file over ``target`` (a symlink there is replaced, not followed)."""
    t = Path(target)
    try:
        kind = file_kind(os.lstat(t).st_mode)
    except FileNotFoundError:
        kind = None
    if kind is not None:  # appeared since the check: never rename over a folder or a device
        raise OutputError(f"{t}: became {kind} during the run; the result was not written")
    _set_mode(Path(temp), t)
    os.replace(temp, t)
    committed.append(t)


def _umask() -> int:
    """The process's umask, read without changing it where the platform says it (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _set_mode(temp: Path, target: Path) -> None:
    """The mode a file written in place would have: the replaced file's, else 0666 less the umask.

    Temporary files are often created private (mkstemp, safetensors: 0600); the result is not.
    """
    try:
        st = os.stat(target)
        mode = stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else 0o666 & ~_umask()
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        os.chmod(temp, mode)
    except OSError as e:
        log.debug("cannot set the mode of %s: %s", temp, e)


@contextmanager
def atomic_output(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``target`` when the block completes."""
    temp = temp_path(target, suffix)
    try:
        yield temp
        commit(temp, target)
    except BaseException:
        try:
            temp.unlink(missing_ok=True)
        except OSError as e:
            log.warning("could not remove %s: %s", temp, e)
        raise


def write_text(target: str | os.PathLike[str], text: str, option: str = "output") -> None:
    """Write ``text`` whole to ``target`` or not at all."""
    try:
        with atomic_output(target, suffix=".tmp") as temp:
            temp.write_text(text, encoding="utf-8")
    except OutputError:
        raise
    except OSError as e:
        raise OutputError(f"{option} {target}: cannot be written ({e.strerror or e})") from e


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def remove_stale_temps(folders: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Remove our temporary files whose process is gone (a killed run on this machine); returns them."""
    removed: list[Path] = []
    uid = os.getuid() if hasattr(os, "getuid") else None
    for folder in dict.fromkeys(Path(f) for f in folders):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            m = _TEMP_RE.match(entry.name)
            if m is None or m["host"] not in (None, HOST_TAG) or _alive(int(m["pid"])):
                continue  # not ours, another machine's (its PID means nothing here), or still running
            try:
                st = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode) or (uid is not None and st.st_uid != uid):
                    continue
                os.unlink(entry.path)
            except OSError as e:
                log.debug("cannot remove %s: %s", entry.path, e)
                continue
            removed.append(Path(entry.path))
    if removed:
        log.info("removed %d temporary file(s) left by a killed run: %s", len(removed), ", ".join(map(str, removed)))
    return removed
