"""PaniniConfig: the hyper-parameters of one Panini-Net variant, and the known variants.

The official values follow the MFR and SR configs of jianzhangcs/panini (see
``../shared/panini/OFFICIAL_ARCHITECTURE.md`` sections 1-3). Widths that the official code derives
from fixed constants (StyleGAN2 channel table, 512-wide fusion, 256-wide degradation code) are
explicit fields here so that the ``tiny`` variant can run every code path at small widths.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

Degradation = Literal["dre", "choice"]

FORMAT = "panini-video.panini/1"


def _is_power_of_two(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


@dataclass(frozen=True, slots=True)
class PaniniConfig:
    """Hyper-parameters of a Panini-Net generator; every field is an architectural fact."""

    in_size: int  # side of the square RGB input (512 MFR, 64 SR)
    out_size: int  # side of the square output (1024 for both official models)
    rrdb_channels: int  # width of the RRDB trunk in encoder.0 (8 MFR, 64 SR)
    num_rrdbs: int  # RRDB blocks in the trunk (2 MFR, 23 SR)
    cbam_reduction: int  # CBAM channel-gate reduction ratio (2 MFR, 8 SR)
    stem_channels: tuple[int, ...]  # encoder.0 convs after CBAM: first stride 1, the rest stride 2
    degradation: Degradation  # "dre": degradation encoder on the input; "choice": learned vector
    rrdb_growth: int = 32  # growth channels of the residual dense blocks
    style_channels: int = 512  # width of a W+ latent
    num_mlps: int = 8  # linear layers of the (unused) StyleGAN2 mapping network
    lr_mlp: float = 0.01  # equalized-lr multiplier of the mapping network
    channel_base: int = 32768  # StyleGAN2 width at resolution r: min(max_channels, channel_base // r)
    max_channels: int = 512  # (channel_base = 16384 * channel_multiplier; official multiplier 2)
    num_fusions: int = 5  # DAFI fusion layers, at resolutions 4, 8, ..., 4 * 2**(num_fusions - 1)
    latent_conv_channels: int = 256  # conv before the latent linear in encoder.5
    code_channels: int = 256  # degradation code width (DRE output / choice vector), mask MLP input
    dre_channels: tuple[int, int, int] = (64, 128, 256)  # DRE widths at full, 1/2 and 1/4 of dre_size
    dre_size: int = 256  # the input is average-pooled to this side before the DRE

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in ("in_size", "out_size", "dre_size"):
            if not _is_power_of_two(getattr(self, name)):
                problems.append(f"{name}={getattr(self, name)} must be a power of two")
        if self.degradation not in ("dre", "choice"):
            problems.append(f"degradation={self.degradation!r} must be 'dre' or 'choice'")
        if self.num_fusions < 1:
            problems.append("num_fusions must be at least 1")
        top = self.fusion_sizes[-1] if self.num_fusions >= 1 else 4
        if self.out_size <= top:
            problems.append(f"out_size={self.out_size} must exceed the largest fusion resolution {top}")
        if _is_power_of_two(self.in_size) and self.in_size < top:
            problems.append(f"in_size={self.in_size} is smaller than the largest fusion resolution {top}")
        elif _is_power_of_two(self.in_size) and len(self.stem_channels) != 1 + int(math.log2(self.in_size // top)):
            problems.append(
                f"stem_channels needs {1 + int(math.log2(self.in_size // top))} entries "
                f"(one stride-1 conv, then one stride-2 conv per halving from {self.in_size} to {top})"
            )
        if self.num_fusions >= 1 and len({self.channels(r) for r in self.fusion_sizes}) != 1:
            problems.append("the generator width must be the same at every fusion resolution")
        if self.stem_channels and self.stem_channels[-1] != self.channels(top):
            problems.append(f"stem_channels[-1] must equal the generator width {self.channels(top)} at {top}")
        if self.rrdb_channels % self.cbam_reduction:
            problems.append("rrdb_channels must be divisible by cbam_reduction")
        if self.degradation == "dre" and self.dre_channels[-1] != self.code_channels:
            problems.append("dre_channels[-1] must equal code_channels")
        if self.degradation == "dre" and self.dre_size > self.in_size:
            problems.append("dre_size must not exceed in_size")
        if problems:
            raise ValueError("invalid PaniniConfig: " + "; ".join(problems))

    # Derived quantities -------------------------------------------------------------------------

    @property
    def log_size(self) -> int:
        """log2 of the output side (10 for 1024)."""
        return int(math.log2(self.out_size))

    @property
    def num_latents(self) -> int:
        """W+ latents the synthesis network consumes (18 for 1024)."""
        return 2 * self.log_size - 2

    @property
    def num_noises(self) -> int:
        """Stored noise buffers (17 for 1024)."""
        return 2 * self.log_size - 3

    @property
    def fusion_sizes(self) -> tuple[int, ...]:
        """Resolutions at which encoder features are fused, smallest first (4 ... 64 officially)."""
        return tuple(4 * 2**k for k in range(self.num_fusions))

    @property
    def fusion_channels(self) -> int:
        """Width of the fused features (512 officially)."""
        return self.channels(4)

    @property
    def uses_dre(self) -> bool:
        """True when the degradation code comes from the DRE (MFR), False for a choice vector (SR)."""
        return self.degradation == "dre"

    def channels(self, resolution: int) -> int:
        """StyleGAN2 feature width at a resolution (table 1.2 of the spec for the official models)."""
        return min(self.max_channels, self.channel_base // resolution)

    # Serialisation ------------------------------------------------------------------------------

    def to_json(self) -> str:
        """The config as a compact JSON object (tuples become lists)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PaniniConfig:
        """Parse ``to_json`` output; unknown or missing fields raise ValueError."""
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"PaniniConfig JSON is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("PaniniConfig JSON must be an object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"PaniniConfig JSON has unknown fields: {', '.join(unknown)}")
        for name in ("stem_channels", "dre_channels"):
            if name in data:
                data[name] = tuple(data[name])
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"PaniniConfig JSON is incomplete: {exc}") from exc


VARIANTS: dict[str, PaniniConfig] = {
    # Multi-degradation face restoration, 512 -> 1024 (configs/panini_mfr.py).
    "mfr": PaniniConfig(
        in_size=512,
        out_size=1024,
        rrdb_channels=8,
        num_rrdbs=2,
        cbam_reduction=2,
        stem_channels=(32, 64, 128, 512),
        degradation="dre",
    ),
    # 16x face super-resolution, 64 -> 1024 (configs/panini_sr.py).
    "sr": PaniniConfig(
        in_size=64,
        out_size=1024,
        rrdb_channels=64,
        num_rrdbs=23,
        cbam_reduction=8,
        stem_channels=(512,),
        degradation="choice",
    ),
    # Test and demo stand-in: the MFR family (DRE, strided stem, skip upsampling) at small widths.
    # Widths: 32 at 4...64, 16 at 128; fusion at 4...32, so the stem has one stride-2 conv.
    "tiny": PaniniConfig(
        in_size=64,
        out_size=128,
        rrdb_channels=8,
        num_rrdbs=1,
        cbam_reduction=2,
        stem_channels=(16, 32),
        degradation="dre",
        rrdb_growth=8,
        style_channels=32,
        num_mlps=2,
        channel_base=2048,
        max_channels=32,
        num_fusions=4,
        latent_conv_channels=16,
        code_channels=32,
        dre_channels=(8, 16, 32),
        dre_size=32,
    ),
}
