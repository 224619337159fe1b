"""Import an official Panini-Net checkpoint (mmcv ``.pth``) into the slim safetensors cache file.

The official files are mmcv 1.x training checkpoints (spec section 5.3): a dict with ``meta``,
``state_dict`` (the whole GLEAN model: ``generator.*``, ``discriminator.*``,
``perceptual_loss.vgg.*``) and usually ``optimizer``. Only ``generator.*`` is kept, the prefix
stripped, every key and shape checked against the official list, and the result written with
``save_state_dict``. A bare state_dict (whole model, or the generator alone) is accepted too.

Nothing pickled is ever executed: the file is read with ``torch.load(weights_only=True)``, which
only rebuilds tensors and plain containers, plus an allow-list of the few harmless types that
mmcv's ``meta`` may hold (numpy scalars and arrays, datetime, paths) and inert stand-ins for
mmcv/mmengine ``Config`` objects. Anything else (``os.system``, arbitrary classes) is refused.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import pathlib
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from panini_video.cache import model_path
from panini_video.errors import CheckpointMismatchError, WeightsError, WeightsNotFoundError
from panini_video.models.config import VARIANTS
from panini_video.models.keys import LISTED, expected_keys
from panini_video.models.serialize import check_state_dict, save_state_dict

log = logging.getLogger(__name__)

GLEAN_PARTS = ("generator.", "discriminator.", "perceptual_loss.")


class _Opaque:
    """Inert stand-in for an mmcv/mmengine config object in ``meta``: keeps its state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _AsOrderedDict:
    """Stand-in for a dict subclass in ``meta`` (mmcv ``ConfigDict``, ``addict.Dict``).

    torch's weights-only unpickler fills only plain dict types, so the object is rebuilt as an
    OrderedDict: ``__new__`` returns one, and its items and state land in it as data.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return OrderedDict()


def _meta_globals() -> list[Any]:
    """What ``meta`` may need beyond tensors: (object, pickled name) pairs for ``safe_globals``.

    numpy pickles scalars as ``multiarray.scalar(dtype, bytes)`` and arrays as
    ``_reconstruct(ndarray, shape, dtype)`` + state; files written with numpy 1.x name the module
    ``numpy.core``, numpy 2 ``numpy._core``. Building these from already-unpickled data runs no
    user code.
    """
    multiarray = np._core.multiarray  # type: ignore[attr-defined]
    pairs: list[Any] = []
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        pairs.append((multiarray.scalar, f"{module}.scalar"))
        pairs.append((multiarray._reconstruct, f"{module}._reconstruct"))
    pairs += [(np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    for dtype_class in {type(np.dtype(c)) for c in "?bhilqBHILQefdgFDGUSOMm"}:
        pairs.append((dtype_class, f"numpy.dtypes.{dtype_class.__name__}"))
    pairs += [
        (datetime.datetime, "datetime.datetime"),
        (datetime.date, "datetime.date"),
        (datetime.time, "datetime.time"),
        (datetime.timedelta, "datetime.timedelta"),
        (datetime.timezone, "datetime.timezone"),
        (pathlib.PurePosixPath, "pathlib.PosixPath"),
        (pathlib.PurePosixPath, "pathlib.PurePosixPath"),
        (pathlib.PureWindowsPath, "pathlib.WindowsPath"),
        (pathlib.PureWindowsPath, "pathlib.PureWindowsPath"),
    ]
    for name in ("mmcv.utils.config.Config", "mmcv.Config", "mmengine.config.config.Config", "mmengine.config.Config"):
        pairs.append((_Opaque, name))
    for name in (
        "mmcv.utils.config.ConfigDict",
        "mmcv.ConfigDict",
        "mmengine.config.config.ConfigDict",
        "mmengine.config.ConfigDict",
        "addict.addict.Dict",
        "addict.Dict",
    ):
        pairs.append((_AsOrderedDict, name))
    return pairs


@contextlib.contextmanager
def _allow_meta() -> Iterator[None]:
    with torch.serialization.safe_globals(_meta_globals()):
        yield


def read_checkpoint(path: str | os.PathLike[str]) -> Any:
    """The unpickled content of a ``.pth`` file, refusing anything but tensors and plain data."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"checkpoint {path} does not exist")
    # mmap keeps a 1 GB checkpoint (optimizer state included) out of memory; legacy files can't.
    mmap = zipfile.is_zipfile(path)
    with open(path, "rb") as f:
        if not mmap and f.read(1) != b"\x80":  # neither zip nor a legacy file's pickle header
            raise WeightsError(f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    try:
        with _allow_meta():
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
        what = found.group(1) if found else "an object that is not a tensor or plain data"
        if detail and not found:
            what += f" ({detail.group(1).strip()})"
        raise WeightsError(
            f"refused to read {path}: it asks to run {what}, which a weights file has no need for; "
            "nothing in it was executed. Use a checkpoint from the official download."
        ) from exc
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise WeightsError(f"{path} is not a readable PyTorch checkpoint: {exc}") from exc


def generator_state(content: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The generator's tensors, ``generator.`` prefix stripped, from a checkpoint or a state_dict."""
    state = content.get("state_dict", content) if isinstance(content, Mapping) else content
    if not isinstance(state, Mapping) or not state:
        raise CheckpointMismatchError(f"{source} holds no state_dict (found {type(content).__name__})")
    if any(isinstance(k, str) and k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from a DDP wrapper
    keys = [k for k in state if isinstance(k, str)]
    # A whole-model dict has generator.generator.* (StyleGAN2 part) and generator.encoder.*; the
    # Panini module's own state_dict has generator.* (StyleGAN2) but encoder.* unprefixed.
    whole = any(k.startswith(("discriminator.", "perceptual_loss.", "generator.encoder.")) for k in keys)
    if whole:
        state = {k[len("generator.") :]: v for k, v in state.items() if k.startswith("generator.")}
    not_tensors = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise CheckpointMismatchError(f"{source} has entries that are not tensors: {', '.join(not_tensors[:8])}")
    return dict(state)


def detect_variant(state: Mapping[str, torch.Tensor]) -> str:
    """``mfr`` (has the DRE ``deg_encoder``) or ``sr`` (has a ``choice_vector``), from the keys."""
    has_dre = any(k.startswith("deg_encoder.") for k in state)
    has_choice = "choice_vector" in state
    if has_dre != has_choice:
        return "mfr" if has_dre else "sr"
    raise CheckpointMismatchError(
        "cannot tell the Panini-Net variant from the keys "
        f"({'both' if has_dre else 'neither'} deg_encoder.* and choice_vector); pass --variant mfr|sr"
    )


def import_checkpoint(
    path: str | os.PathLike[str], variant: str | None = None, dest: str | os.PathLike[str] | None = None
) -> Path:
    """Convert an official checkpoint (or a bare state_dict) into the cache file; returns its path.

    Args:
        variant: ``mfr`` or ``sr``; detected from the keys when None.
        dest: where to write; default ``panini_video.cache.model_path(variant)``.
    """
    return import_content(read_checkpoint(path), str(path), variant, dest)


def import_content(
    content: Any, source: str, variant: str | None = None, dest: str | os.PathLike[str] | None = None
) -> Path:
    """``import_checkpoint`` of a checkpoint already read with ``read_checkpoint`` (``source`` names it)."""
    if variant is not None and variant not in LISTED:
        raise CheckpointMismatchError(f"cannot import variant {variant!r}: official variants are {', '.join(LISTED)}")
    state = generator_state(content, source)
    variant = variant or detect_variant(state)
    expected = expected_keys(variant)
    check_state_dict(state, expected, f"{source} (as Panini-Net {variant!r}, 'generator.' prefix removed)")
    dest = save_state_dict({k: state[k] for k in expected}, VARIANTS[variant], dest or model_path(variant))
    log.info("imported %s as Panini-Net %s: %s (%d tensors)", source, variant, dest, len(state))
    return dest
