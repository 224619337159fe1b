"""Importing official-format checkpoints: key checks, the slim file, and refusal of pickled code."""

from __future__ import annotations

import os
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from panini_video.cache import model_path
from panini_video.errors import CheckpointMismatchError, WeightsError, WeightsNotFoundError
from panini_video.models.checkpoint import detect_variant, generator_state, import_checkpoint, read_checkpoint
from panini_video.models.config import VARIANTS
from panini_video.models.keys import expected_keys
from panini_video.models.serialize import read_state_dict
from tests.official_checkpoint import generator_tensors, mmcv_checkpoint


@pytest.fixture
def fake_mmcv() -> Iterator[types.ModuleType]:
    """Importable ``mmcv.utils.config`` with Config/ConfigDict that pickle as mmcv's do, removed afterwards."""

    class ConfigDict(dict):  # addict.Dict: state is the dict itself
        def __getstate__(self) -> object:
            return self

        def __setstate__(self, state: object) -> None:
            self.update(state)  # type: ignore[call-overload]

    class Config:
        def __init__(self, text: str) -> None:
            self._cfg_dict, self._filename, self._text = ConfigDict(model=ConfigDict(type="GLEAN")), "x.py", text

        def __getstate__(self) -> object:
            return (self._cfg_dict, self._filename, self._text)

        def __setstate__(self, state: tuple[object, object, object]) -> None:
            self._cfg_dict, self._filename, self._text = state

    module = types.ModuleType("mmcv.utils.config")
    for cls in (ConfigDict, Config):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    names = ("mmcv", "mmcv.utils", "mmcv.utils.config")
    for name in names:
        sys.modules[name] = module if name == module.__name__ else types.ModuleType(name)
    yield module
    for name in names:
        sys.modules.pop(name, None)


def test_full_mfr_checkpoint_round_trips(tmp_path: Path) -> None:
    generator = generator_tensors("mfr", real=True)
    path = tmp_path / "panini_mfr_latest.pth"
    torch.save(mmcv_checkpoint(generator), path)
    out = import_checkpoint(path)
    assert out == model_path("mfr") and out.is_file()
    state, config = read_state_dict(out)
    assert config == VARIANTS["mfr"]
    assert set(state) == set(expected_keys("mfr"))  # the generator only
    for key, value in generator.items():
        assert state[key].dtype == value.dtype and torch.equal(state[key], value), key
    # The slim file holds the generator's 94.3 M parameters + 2.8 M buffer elements only.
    assert out.stat().st_size < path.stat().st_size


def test_mmcv_config_objects_in_meta_are_read_as_inert_data(tmp_path: Path, fake_mmcv: types.ModuleType) -> None:
    checkpoint = mmcv_checkpoint(generator_tensors("sr", real=False))
    checkpoint["meta"]["config"] = fake_mmcv.Config("model = dict(type='GLEAN')")  # type: ignore[index]
    torch.save(checkpoint, tmp_path / "sr.pth")
    for name in ("mmcv", "mmcv.utils", "mmcv.utils.config"):
        sys.modules.pop(name)  # reading must not need (or import) mmcv
    content = read_checkpoint(tmp_path / "sr.pth")
    config = content["meta"]["config"]
    assert type(config).__module__ == "panini_video.models.checkpoint"
    assert config.state[2] == "model = dict(type='GLEAN')" and dict(config.state[0]["model"]) == {"type": "GLEAN"}
    assert content["meta"]["seed"] == 2021 and content["meta"]["when"].year == 2022
    assert "mmcv" not in sys.modules


def test_sr_variant_is_detected_from_the_keys(tmp_path: Path) -> None:
    torch.save(mmcv_checkpoint(generator_tensors("sr", real=False)), tmp_path / "sr.pth")
    state = generator_state(read_checkpoint(tmp_path / "sr.pth"))
    assert detect_variant(state) == "sr" and set(state) == set(expected_keys("sr"))


def test_bare_state_dicts_are_accepted(tmp_path: Path) -> None:
    generator = generator_tensors("mfr", real=False)
    torch.save(generator, tmp_path / "generator_only.pth")
    torch.save(mmcv_checkpoint(generator)["state_dict"], tmp_path / "whole_model.pth")
    torch.save({f"module.{k}": v for k, v in generator.items()}, tmp_path / "ddp.pth")
    # Written by torch < 1.6 (mmcv 1.x on old torch): the legacy non-zip format.
    torch.save(mmcv_checkpoint(generator), tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    for name in ("generator_only.pth", "whole_model.pth", "ddp.pth", "legacy.pth"):
        state = generator_state(read_checkpoint(tmp_path / name))
        assert set(state) == set(generator) and detect_variant(state) == "mfr", name


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda g: g.pop("encoder.0.1.fea_preprocess.weight"), "1 missing: encoder.0.1.fea_preprocess.weight"),
        (lambda g: g.__setitem__("encoder.9.weight", torch.zeros(2)), "1 unexpected: encoder.9.weight"),
        (
            lambda g: g.__setitem__("fusion_out.2.weight", torch.zeros(1).expand(512, 512, 1, 1)),
            "1 with a different shape: fusion_out.2.weight [512, 512, 1, 1] (expected [512, 512, 3, 3])",
        ),
    ],
    ids=["missing", "extra", "misshapen"],
)
def test_mismatched_checkpoints_are_refused_naming_the_key(tmp_path: Path, edit: object, named: str) -> None:
    generator = generator_tensors("mfr", real=False)
    assert "encoder.0.1.fea_preprocess.weight" in generator and "fusion_out.2.weight" in generator
    edit(generator)  # type: ignore[operator]
    torch.save(mmcv_checkpoint(generator), tmp_path / "bad.pth")
    with pytest.raises(CheckpointMismatchError, match=re.escape(named)):
        import_checkpoint(tmp_path / "bad.pth")
    assert not model_path("mfr").exists()


def test_the_wrong_variant_is_refused(tmp_path: Path) -> None:
    torch.save(mmcv_checkpoint(generator_tensors("sr", real=False)), tmp_path / "sr.pth")
    with pytest.raises(CheckpointMismatchError, match="missing: .*deg_encoder"):
        import_checkpoint(tmp_path / "sr.pth", variant="mfr")


def test_variant_cannot_be_told_without_dre_or_choice_vector() -> None:
    with pytest.raises(CheckpointMismatchError, match="pass --variant"):
        detect_variant({"encoder.0.0.weight": torch.zeros(1)})


def test_pickled_code_is_refused_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    checkpoint = mmcv_checkpoint(generator_tensors("sr", real=False))
    checkpoint["meta"]["hook"] = Exploit()  # type: ignore[index]
    torch.save(checkpoint, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match=r"refused to read .* posix\.system.* nothing in it was executed"):
        import_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()
    assert not model_path("sr").exists()


def test_arbitrary_classes_are_refused(tmp_path: Path) -> None:
    torch.save({"state_dict": {"x": torch.zeros(1)}, "meta": {"when": types.SimpleNamespace(a=1)}}, tmp_path / "x.pth")
    with pytest.raises(WeightsError, match="types.SimpleNamespace"):
        read_checkpoint(tmp_path / "x.pth")


def test_missing_and_non_checkpoint_files(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError):
        import_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint"):
        import_checkpoint(tmp_path / "text.pth")
