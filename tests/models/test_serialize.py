"""Weight files: round trip, metadata, variant resolution through the cache, strict checking."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from panini_video import cache
from panini_video.errors import CheckpointMismatchError, WeightsError, WeightsNotFoundError
from panini_video.models import VARIANTS, PaniniConfig, PaniniNet, load_model, read_state_dict, save_model
from panini_video.models import save_state_dict as save_state
from panini_video.models.serialize import read_metadata, weights_label


def test_round_trip_gives_equal_outputs(
    tiny: PaniniNet, tmp_path: Path, random_faces: Callable[..., torch.Tensor]
) -> None:
    path = save_model(tiny, tmp_path / "tiny.safetensors")
    loaded = load_model(path)
    assert loaded.config == tiny.config
    assert not loaded.training
    lq = random_faces(tiny.config, 2)
    with torch.no_grad():
        assert torch.equal(loaded(lq), tiny(lq))
    for key, value in tiny.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_file_metadata_names_the_format_and_config(tiny: PaniniNet, tmp_path: Path) -> None:
    path = save_model(tiny, tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "panini-video.panini/1"
    assert PaniniConfig.from_json(meta["config"]) == VARIANTS["tiny"]
    assert json.loads(meta["config"])["in_size"] == 64
    state, config = read_state_dict(path)
    assert config == VARIANTS["tiny"]
    assert state.keys() == tiny.state_dict().keys()


def test_variant_name_resolves_through_the_cache(tiny: PaniniNet) -> None:
    save_model(tiny, cache.model_path("tiny"))
    loaded = load_model("tiny")
    assert loaded.config == VARIANTS["tiny"]


@pytest.mark.parametrize("variant", ["mfr", "sr"])
def test_missing_variant_file_says_how_to_get_it(variant: str) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        load_model(variant)
    assert f"panini-video weights fetch {variant}" in str(info.value)
    assert "weights import FILE" in str(info.value)


def test_missing_tiny_file_points_to_init() -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        load_model("tiny")
    assert "`panini-video weights init tiny`" in str(info.value) and "weights fetch tiny" not in str(info.value)


def test_random_weights_are_labelled_and_logged_as_random(
    tiny: PaniniNet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    random_file = save_model(tiny, tmp_path / "random.safetensors", random_seed=5)
    plain_file = save_model(tiny, tmp_path / "plain.safetensors")
    assert weights_label(read_metadata(random_file)) == "random weights, seed 5"
    assert weights_label(read_metadata(plain_file)) == "trained weights"
    with caplog.at_level(logging.INFO, logger="panini_video.models.serialize"):
        load_model(random_file)
        load_model(plain_file)
    random_line, plain_line = (r.getMessage() for r in caplog.records)
    assert "random weights, seed 5" in random_line and caplog.records[0].levelno == logging.WARNING
    assert "random weights" not in plain_line and "trained weights" in plain_line


def test_missing_path_is_weights_not_found(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="weights fetch NAME"):
        load_model(tmp_path / "nothing.safetensors")


def test_variant_file_with_another_config_is_rejected(tiny: PaniniNet) -> None:
    save_model(tiny, cache.model_path("mfr"))
    with pytest.raises(CheckpointMismatchError, match="not variant 'mfr'"):
        load_model("mfr")


def test_missing_extra_and_misshaped_keys_are_named(tiny: PaniniNet, tmp_path: Path) -> None:
    state = dict(tiny.state_dict())
    del state["fusion_out.1.bias"]
    state["extra.weight"] = torch.zeros(2)
    state["encoder.0.2.weight"] = torch.zeros(3, 3, 3, 3)
    path = save_state(state, tiny.config, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointMismatchError) as info:
        load_model(path)
    message = str(info.value)
    for key in ("fusion_out.1.bias", "extra.weight", "encoder.0.2.weight"):
        assert key in message


def test_tensors_sharing_storage_are_saved(tiny: PaniniNet, tmp_path: Path) -> None:
    state = dict(tiny.state_dict())
    n = tiny.config.code_channels
    base = torch.randn(n + 1, n)  # weight and bias as two views of one storage
    state["AFS_maskGen.mapping.0.weight"] = base[:n]
    state["AFS_maskGen.mapping.0.bias"] = base[n]
    path = save_state(state, tiny.config, tmp_path / "shared.safetensors")
    loaded = load_model(path)
    assert torch.equal(loaded.AFS_maskGen.mapping[0].weight, base[:n])
    assert torch.equal(loaded.AFS_maskGen.mapping[0].bias, base[n])


def test_foreign_safetensors_file_is_a_weights_error(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(1)}, str(path))
    with pytest.raises(WeightsError, match="not a panini-video weight file"):
        load_model(path)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError):
        load_model(garbage)


def test_load_in_another_dtype(tiny: PaniniNet, tmp_path: Path, random_faces: Callable[..., torch.Tensor]) -> None:
    path = save_model(tiny, tmp_path / "m.safetensors")
    model = load_model(path, dtype=torch.float64)
    assert model.get_parameter("fusion_out.0.weight").dtype == torch.float64
    assert model.deg_encoder.E[1].num_batches_tracked.dtype == torch.int64
    lq = random_faces(tiny.config, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(lq.double()).float(), tiny(lq), rtol=1e-4, atol=1e-4)
