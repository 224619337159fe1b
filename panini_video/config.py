"""Run configuration: a TOML preset, then command-line flags, resolved into ``RunConfig``.

Each stage gets only its own section (``DetectConfig``, ``RestoreConfig``, ...). A preset is a
TOML file whose tables are named like the sections (``[detect]``, ``[restore]``, ...); unknown
tables or keys are refused with the allowed names.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from panini_video.errors import UsageError

PRESET_DIR = Path(__file__).resolve().parent / "pipelines"

Backpressure = Literal["block", "drop-oldest"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
DreMode = Literal["track", "frame"]


@dataclass(frozen=True)
class IOConfig:
    """Encoder of the output; None means: chosen from the output's extension."""

    codec: str | None = None  # libx264 for .mp4/.mov/.mkv, libvpx-vp9 for .webm
    crf: int | None = None  # codec default when None (23 for x264, 32 for VP9)
    preset: str | None = None  # x264 speed preset (medium when None)
    pix_fmt: str | None = None  # yuv420p when None
    decode_threads: int = 0  # 0: FFmpeg picks


@dataclass(frozen=True)
class RuntimeConfig:
    """The stage graph: queue sizes and what happens when a stage falls behind."""

    queue_size: int = 8  # bounded queues keep memory flat; larger smooths bursts
    backpressure: Backpressure = "block"  # block for files; drop-oldest for live sources


@dataclass(frozen=True)
class DetectConfig:
    """Face detection: which RetinaFace, how often, at what size."""

    detector: Literal["mobilenet", "resnet50"] = "mobilenet"
    weights: str | None = None  # path; None: the cache directory
    threshold: float = 0.8  # higher: fewer false faces, more missed small ones
    det_size: int = 640  # longest side the frame is scaled to for detection
    nms_threshold: float = 0.4
    detect_every: int = 1  # detect every N frames; tracking carries faces between
    batch_frames: int = 4  # frames per detector call
    device: str | None = None  # None: same as restore.device


@dataclass(frozen=True)
class TrackConfig:
    """Tracking: IoU association with Kalman prediction; scene cuts reset it."""

    iou_threshold: float = 0.3
    max_misses: int = 10  # frames a track survives undetected
    min_hits: int = 1
    scene_cut_threshold: float = 0.5  # histogram distance above which a frame is a cut


@dataclass(frozen=True)
class SmoothConfig:
    """Causal landmark smoothing per track (One-Euro); strength 0 turns it off."""

    strength: float = 1.0


@dataclass(frozen=True)
class SelectConfig:
    """Which faces are restored."""

    max_faces: int | None = None
    min_face_size: float = 0.0  # pixels, box height
    only_largest: bool = False


@dataclass(frozen=True)
class BlendConfig:
    """Paste-back of restored faces."""

    color_match: bool = False
    feather: float = 0.05  # blur of the mask, as a share of the crop size


@dataclass(frozen=True)
class RestoreConfig:
    """Panini-Net restoration."""

    model: str = "mfr"  # mfr | sr | tiny | PATH to a .safetensors file
    device: str | None = None  # None: cuda when available, else cpu
    precision: Precision = "auto"
    batch_size: int = 8
    max_wait_ms: float = 50.0  # how long a partial batch waits for more faces
    dre_mode: DreMode = "track"
    dre_warmup: int = 5  # K: frames whose codes start a track's code
    dre_ema: float = 0.02  # how fast a track's code follows later frames; 0 freezes it
    upscale: int = 1


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs, section by section."""

    io: IOConfig = field(default_factory=IOConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)
    restore: RestoreConfig = field(default_factory=RestoreConfig)
    annotate: bool = False  # preview mode: draw faces, do not restore

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_overrides(self, overrides: dict[str, dict[str, Any]] | dict[str, Any]) -> RunConfig:
        """A copy with ``{"section": {"key": value}}`` applied (None values are ignored)."""
        return _merge(self, overrides, "")


def _merge(obj: Any, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in known:
            raise UsageError(f"unknown setting '{where}{key}'; allowed: {', '.join(sorted(known))}")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise UsageError(f"'{where}{key}' must be a table")
            changes[name] = _merge(current, value, f"{where}{key}.")
        elif value is not None:
            changes[name] = _check_type(current, value, f"{where}{key}")
    return dataclasses.replace(obj, **changes)


def _check_type(current: Any, value: Any, where: str) -> Any:
    if isinstance(current, bool) and not isinstance(value, bool):
        raise UsageError(f"'{where}' must be true or false, got {value!r}")
    if isinstance(current, int) and not isinstance(current, bool) and isinstance(value, float):
        if not value.is_integer():
            raise UsageError(f"'{where}' must be a whole number, got {value!r}")
        return int(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if current is not None and not isinstance(value, type(current)):
        raise UsageError(f"'{where}' must be {type(current).__name__}, got {value!r}")
    return value


def resolve_preset(name_or_path: str) -> Path:
    """A preset name (file in ``PRESET_DIR`` without .toml) or a path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise UsageError(f"pipeline preset file not found: {path}")
        return path
    candidate = PRESET_DIR / f"{name_or_path}.toml"
    if not candidate.is_file():
        names = sorted(p.stem for p in PRESET_DIR.glob("*.toml"))
        raise UsageError(f"unknown pipeline preset '{name_or_path}'; known: {', '.join(names)}")
    return candidate


def load_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults, then the preset (name or file), then the overrides (flags)."""
    config = RunConfig()
    if preset is not None:
        path = resolve_preset(preset)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"pipeline preset {path} is not valid TOML: {exc}") from exc
        config = config.with_overrides(data)
    if overrides:
        config = config.with_overrides(overrides)
    return config
