"""Run configuration: a TOML preset, then command-line flags, resolved into ``RunConfig``.

Each stage gets only its own section (``DetectConfig``, ``RestoreConfig``, ...). A preset is a
TOML file whose tables are named like the sections (``[detect]``, ``[restore]``, ...); unknown
tables or keys are refused with the allowed names.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

from panini_video.errors import UsageError

PRESET_DIR = Path(__file__).resolve().parent / "pipelines"

Backpressure = Literal["block", "drop-oldest"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
DreMode = Literal["track", "frame"]
LatePolicy = Literal["pass", "drop"]
RtspTransport = Literal["tcp", "udp"]
Deinterlace = Literal["auto", "off", "bwdif", "bwdif-field"]
FieldOrder = Literal["auto", "tff", "bff"]
AssumeColorspace = Literal["auto", "bt709", "bt601", "bt601-625", "bt2020"]
AssumeRange = Literal["auto", "limited", "full"]
FileReport = Literal["none", "json", "html"]
DEINTERLACE_MODES: tuple[str, ...] = get_args(Deinterlace)
FIELD_ORDERS: tuple[str, ...] = get_args(FieldOrder)
FOREVER = -1  # live.reconnect: no limit on reconnections


@dataclass(frozen=True, slots=True)
class Limit:
    """The accepted values of one setting: a closed range (``lo_open``: lo itself refused) and the flag."""

    lo: float | None = None
    hi: float | None = None
    flag: str | None = None
    lo_open: bool = False
    parse: Callable[[Any], Any] | None = None  # turns a preset's text ("2G") into the field's type

    def describe(self) -> str:
        show = _size if self.parse is parse_size else _num
        if self.lo is not None and self.hi is not None:
            start, join = ("above", "and at most") if self.lo_open else ("from", "to")
            return f"{start} {show(self.lo)} {join} {show(self.hi)}"
        if self.lo is not None:
            return f"{'above' if self.lo_open else 'at least'} {show(self.lo)}"
        assert self.hi is not None
        return f"at most {show(self.hi)}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _size(x: float) -> str:
    """Bytes as the largest binary unit that divides them (64M, 1P), as ``--max-memory`` takes them."""
    value, unit = int(x), ""
    for name in "KMGTP":
        if value % 1024:
            break
        value, unit = value // 1024, name
    return f"{value}{unit}"


def setting(default: Any, lo: float | None = None, hi: float | None = None, **kw: Any) -> Any:
    """A config field with its accepted range (see ``Limit``)."""
    return field(default=default, metadata={"limit": Limit(lo, hi, **kw)})


def parse_size(value: Any) -> int:
    """Bytes from ``2G``, ``512M``, ``1.5GiB``, ``100000`` (binary units: K = 1024)."""
    if isinstance(value, bool):
        raise UsageError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise UsageError(f"not a size in bytes: {value!r}")
        return int(value)
    text = str(value).strip().upper().removesuffix("B").removesuffix("I")
    scale = 1
    if text and text[-1] in "KMGT":
        scale = 1024 ** ("KMGT".index(text[-1]) + 1)
        text = text[:-1]
    try:
        number = float(text)
    except ValueError:
        raise UsageError(f"not a size: {value!r} (examples: 2G, 512M, 1500000000)") from None
    if not math.isfinite(number):
        raise UsageError(f"not a size: {value!r}")
    return int(number * scale)


class _Section:
    """Checks every field of a config section against its type and ``Limit`` when it is made."""

    section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            where = f"{self.section}.{f.name}" if self.section else f.name
            limit: Limit | None = f.metadata.get("limit")
            if limit is not None and limit.flag:
                where += f" ({limit.flag})"
            if dataclasses.is_dataclass(value):
                continue
            _check_value(hints[f.name], value, where)
            if limit is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
                bad = (limit.lo is not None and (value < limit.lo or (limit.lo_open and value == limit.lo))) or (
                    limit.hi is not None and value > limit.hi
                )
                if bad:
                    raise UsageError(f"{where} must be {limit.describe()}, got {value!r}")


def _options(hint: Any) -> tuple[Any, ...]:
    """The types a field's annotation allows: the members of ``X | Y``, else the one type."""
    return get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)


def _check_value(hint: Any, value: Any, where: str) -> None:
    """``value`` fits ``hint`` (bool, int, float, str, Literal, X | None); floats must be finite."""
    options = _options(hint)
    if value is None:
        if type(None) in options:
            return
        raise UsageError(f"{where} must be set")
    for option in options:
        if get_origin(option) is Literal:
            if value in get_args(option) and isinstance(value, str):
                return
            raise UsageError(f"{where} must be one of {', '.join(map(str, get_args(option)))}, got {value!r}")
    if isinstance(value, bool):
        if bool in options:
            return
    elif isinstance(value, int):
        if int in options or float in options:
            return
    elif isinstance(value, float):
        if float in options:
            if not math.isfinite(value):
                raise UsageError(f"{where} must be a finite number, got {value!r}")
            return
    elif isinstance(value, str) and str in options:
        return
    words = {int: "a whole number", float: "a number", bool: "true or false", str: "text", type(None): "unset"}
    names = " or ".join(words.get(o, getattr(o, "__name__", str(o))) for o in options)
    raise UsageError(f"{where} must be {names}, got {value!r}")


@dataclass(frozen=True)
class IOConfig(_Section):
    """Encoder of the output; None means: chosen from the output's extension.

    The encoder settings are checked against the encoder itself (``io.encoder.plan_encoder``
    opens it before the first frame): a codec that is no video encoder, a crf out of that
    codec's range, a preset or pixel format it does not know are refused there.
    """

    section: ClassVar[str] = "io"

    codec: str | None = None  # libx264 for .mp4/.mov/.mkv, libvpx-vp9 for .webm
    crf: int | None = None  # codec default when None (23 for x264, 32 for VP9)
    preset: str | None = None  # x264 speed preset (medium when None)
    pix_fmt: str | None = None  # None: the input's, where the encoder takes it (else yuv420p)
    profile: str | None = None  # prores: proxy|lt|standard|hq|4444|4444xq; dnxhr: lb|sq|hq|hqx|444 (hq when None)
    decode_threads: int = setting(0, 0, 256)  # 0: FFmpeg picks
    # interlaced input (io.deinterlace): auto = bwdif when idet finds interlacing; bwdif-field: one frame per field
    deinterlace: Deinterlace = "auto"
    field_order: FieldOrder = "auto"  # auto: idet's majority, else the stream's flag, else tff
    ivtc: bool = False  # telecined 29.97i film back to 23.976 (fieldmatch + decimate)
    verify: bool = False  # after each file: panini-video verify against the input (a failed check: exit 5)
    file_report: FileReport = "none"  # batch: each output's provenance report beside it (OUT.report.json|.html)
    # what untagged samples mean (io.colour): auto = BT.709 from 720 lines up, else BT.601; limited range
    assume_colorspace: AssumeColorspace = "auto"
    assume_range: AssumeRange = "auto"


@dataclass(frozen=True)
class RuntimeConfig(_Section):
    """The stage graph: queue sizes, memory and what happens when a stage falls behind."""

    section: ClassVar[str] = "runtime"

    queue_size: int = setting(8, 1, 1024, flag="--queue-size")  # larger smooths bursts; bounded by max_memory
    backpressure: Backpressure = "block"  # block for files; drop-oldest for live sources only
    # bytes the frames in flight may take; None: a quarter of the machine's memory
    max_memory: int | None = setting(None, 64 * 2**20, 2**50, flag="--max-memory", parse=parse_size)


def parse_reconnect(value: Any) -> int:
    """``--reconnect N|forever``: a count, or ``FOREVER`` (-1)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("forever", "inf", "always"):
            return FOREVER
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"not a count or 'forever': {value!r}") from None
    return value  # type: ignore[no-any-return]


def parse_bitrate(value: Any) -> int:
    """Bits per second from ``2M``, ``800k``, ``2500000`` (decimal units: k = 1000)."""
    if isinstance(value, bool):
        raise UsageError(f"not a bit rate: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UsageError(f"not a bit rate: {value!r}")
        return int(value)
    text = str(value).strip().lower().removesuffix("bps").removesuffix("b")
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(text[-1:], 1)
    if scale != 1:
        text = text[:-1]
    try:
        number = float(text)
    except ValueError:
        raise UsageError(f"not a bit rate: {value!r} (give 2M, 800k or bits per second)") from None
    if not math.isfinite(number) or number < 0:
        raise UsageError(f"not a bit rate: {value!r}")
    return int(number * scale)


@dataclass(frozen=True)
class LiveConfig(_Section):
    """A live source and its publishers: connection, watchdog, reconnects, latency, encoder.

    Used only when an input or output is live (a URL, a capture device, standard input); a file
    run ignores this section.
    """

    section: ClassVar[str] = "live"

    rtsp_transport: RtspTransport = "tcp"  # RTSP input over TCP (no UDP packet loss) or UDP
    input_format: str | None = None  # a capture device's format (v4l2: mjpeg, yuyv422, h264), or a demuxer
    input_size: str | None = None  # a capture device's size, WIDTHxHEIGHT
    input_fps: float | None = setting(None, 0.0, 1000.0, lo_open=True, flag="--input-fps")
    open_timeout: float = setting(10.0, 0.1, 3600.0, flag="--open-timeout")  # seconds to connect
    stall_timeout: float = setting(5.0, 0.1, 3600.0, flag="--stall-timeout")  # seconds without a packet
    reconnect: int = setting(FOREVER, FOREVER, 10**9, flag="--reconnect", parse=parse_reconnect)
    backoff_initial: float = setting(0.5, 0.0, 600.0)  # seconds before the first reconnection
    backoff_max: float = setting(30.0, 0.0, 3600.0)  # the delay doubles up to this, with jitter
    max_latency_ms: float | None = setting(None, 1.0, 3_600_000.0, flag="--max-latency")
    late: LatePolicy = "pass"  # a frame older than max_latency at the restorer: passed unrestored, or dropped
    bitrate: int | None = setting(None, 10_000, 10**10, flag="--bitrate", parse=parse_bitrate)  # None: crf
    keyint: float = setting(2.0, 0.04, 60.0, flag="--keyint")  # seconds between keyframes of a published stream
    stats_every: float | None = setting(None, 0.1, 86400.0, flag="--stats-every")  # seconds; None: no health line

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.input_size is not None and not re.fullmatch(r"[1-9]\d{0,4}x[1-9]\d{0,4}", self.input_size):
            raise UsageError(
                f"live.input_size (--input-size) must be WIDTHxHEIGHT, like 1280x720, got {self.input_size!r}"
            )


@dataclass(frozen=True)
class DetectConfig(_Section):
    """Face detection: which RetinaFace, how often, at what size."""

    section: ClassVar[str] = "detect"

    detector: Literal["mobilenet", "resnet50"] = "mobilenet"
    weights: str | None = None  # path; None: the cache directory
    threshold: float = setting(0.8, 0.0, 1.0, lo_open=True, flag="--det-threshold")  # higher: fewer false faces
    det_size: int = setting(640, 64, 4096, flag="--det-size")  # longest side the frame is scaled to
    nms_threshold: float = setting(0.4, 0.0, 1.0, lo_open=True)
    detect_every: int = setting(1, 1, 1000, flag="--detect-every")  # tracking carries faces between
    batch_frames: int = setting(4, 1, 64)  # frames per detector call
    device: str | None = None  # None: same as restore.device


@dataclass(frozen=True)
class TrackConfig(_Section):
    """Tracking: IoU association with Kalman prediction; scene cuts reset it."""

    section: ClassVar[str] = "track"

    iou_threshold: float = setting(0.3, 0.0, 1.0, lo_open=True)
    max_misses: int = setting(10, 0, 10000)  # frames a track survives undetected
    min_hits: int = setting(1, 1, 1000)
    scene_cut_threshold: float = setting(0.5, 0.0, 1.0, lo_open=True)  # histogram distance of a cut


@dataclass(frozen=True)
class SmoothConfig(_Section):
    """Causal landmark smoothing per track (One-Euro); strength 0 turns it off."""

    section: ClassVar[str] = "smooth"

    strength: float = setting(1.0, 0.0, 100.0, flag="--smooth")  # divides the filter's cutoffs


@dataclass(frozen=True)
class SelectConfig(_Section):
    """Which faces are restored."""

    section: ClassVar[str] = "select"

    max_faces: int | None = setting(None, 1, 10000, flag="--max-faces")
    min_face_size: float = setting(0.0, 0.0, 100000.0, flag="--min-face-size")  # pixels, box height
    only_largest: bool = False


@dataclass(frozen=True)
class BlendConfig(_Section):
    """Paste-back of restored faces."""

    section: ClassVar[str] = "blend"

    color_match: bool = False
    feather: float = setting(0.05, 0.0, 0.5)  # blur of the mask, as a share of the crop size


@dataclass(frozen=True)
class RestoreConfig(_Section):
    """Panini-Net restoration."""

    section: ClassVar[str] = "restore"

    model: str = "mfr"  # mfr | sr | tiny | PATH to a .safetensors file
    device: str | None = None  # None: cuda when available, else cpu
    precision: Precision = "auto"
    batch_size: int = setting(8, 1, 1024, flag="--batch-size")
    max_wait_ms: float = setting(50.0, 0.0, 60000.0)  # how long a partial batch waits for more faces
    dre_mode: DreMode = "track"
    dre_warmup: int = setting(5, 1, 1000)  # K: frames whose codes start a track's code
    dre_ema: float = setting(0.02, 0.0, 1.0, flag="--dre-ema")  # how fast a track's code follows; 0 freezes it
    upscale: int = setting(1, 1, 8, flag="--upscale")
    download: bool = True  # fetch the official mfr/sr weights on first use when the cache lacks them


@dataclass(frozen=True)
class RunConfig(_Section):
    """Everything one run needs, section by section."""

    io: IOConfig = field(default_factory=IOConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
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


# the section classes, in RunConfig's order (the table-driven tests walk them)
SECTIONS: tuple[type[_Section], ...] = tuple(
    f.default_factory
    for f in fields(RunConfig)
    if f.default_factory is not dataclasses.MISSING  # type: ignore[misc]
)


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
            limit: Limit | None = known[name].metadata.get("limit")
            if limit is not None and limit.parse is not None:
                try:
                    value = limit.parse(value)
                except UsageError as e:
                    raise UsageError(f"'{where}{key}': {e}") from None
            changes[name] = _coerce(get_type_hints(type(obj))[name], value, f"{where}{key}")
    return dataclasses.replace(obj, **changes)  # __post_init__ checks types and ranges


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """A whole float for an int field becomes an int; an int for a float field a float."""
    options = _options(hint)
    if isinstance(value, float) and int in options and float not in options:
        if not math.isfinite(value) or not value.is_integer():
            raise UsageError(f"'{where}' must be a whole number, got {value!r}")
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and float in options and int not in options:
        return float(value)
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
