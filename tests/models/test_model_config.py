"""PaniniConfig: official values, derived quantities, JSON round trip, validation."""

from __future__ import annotations

import dataclasses

import pytest

from panini_video.models import VARIANTS, PaniniConfig


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_json_round_trip(name: str) -> None:
    config = VARIANTS[name]
    assert PaniniConfig.from_json(config.to_json()) == config


def test_official_derived_values_follow_the_spec() -> None:
    mfr, sr = VARIANTS["mfr"], VARIANTS["sr"]
    for config in (mfr, sr):
        assert config.out_size == 1024
        assert config.num_latents == 18
        assert config.num_noises == 17
        assert config.fusion_sizes == (4, 8, 16, 32, 64)
        # Table 1.2 of the spec: StyleGAN2 widths with channel multiplier 2.
        widths = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}
        assert {r: config.channels(r) for r in widths} == widths
    assert (mfr.in_size, mfr.rrdb_channels, mfr.num_rrdbs, mfr.cbam_reduction, mfr.uses_dre) == (512, 8, 2, 2, True)
    assert (sr.in_size, sr.rrdb_channels, sr.num_rrdbs, sr.cbam_reduction, sr.uses_dre) == (64, 64, 23, 8, False)


def test_tiny_is_small_and_on_the_dre_path_with_a_strided_stem() -> None:
    tiny = VARIANTS["tiny"]
    assert (tiny.in_size, tiny.out_size, tiny.uses_dre) == (64, 128, True)
    assert len(tiny.stem_channels) > 1


def test_unknown_or_missing_json_fields_are_rejected() -> None:
    text = VARIANTS["tiny"].to_json()
    with pytest.raises(ValueError, match="unknown fields: colour"):
        PaniniConfig.from_json(text[:-1] + ',"colour":1}')
    with pytest.raises(ValueError, match="incomplete"):
        PaniniConfig.from_json('{"in_size": 64}')
    with pytest.raises(ValueError, match="not valid JSON"):
        PaniniConfig.from_json("{")


@pytest.mark.parametrize(
    "change",
    [
        {"in_size": 100},
        {"stem_channels": (512,)},  # MFR needs three stride-2 convs from 512 down to 64
        {"degradation": "both"},
        {"code_channels": 128},  # must equal the DRE's last width
        {"cbam_reduction": 3},
    ],
)
def test_inconsistent_configs_are_rejected(change: dict) -> None:
    with pytest.raises(ValueError, match="invalid PaniniConfig"):
        dataclasses.replace(VARIANTS["mfr"], **change)
