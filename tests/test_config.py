from __future__ import annotations

import pytest

from panini_video.config import PRESET_DIR, RunConfig, load_config
from panini_video.errors import PaniniError, UsageError


def test_presets_parse_and_flags_override() -> None:
    for preset in sorted(PRESET_DIR.glob("*.toml")):
        assert isinstance(load_config(preset.stem), RunConfig)
    cfg = load_config("default", {"detect": {"threshold": 0.5}, "restore": {"batch_size": 2}})
    assert cfg.detect.threshold == 0.5 and cfg.restore.batch_size == 2
    assert cfg.restore.dre_mode == "track"


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"detect": {"treshold": 0.5}}, "detect.treshold"),
        ({"nosuch": {}}, "nosuch"),
        ({"restore": {"batch_size": "8"}}, "restore.batch_size"),
        ({"annotate": 1}, "annotate"),
    ],
)
def test_bad_settings_are_refused_with_the_name(overrides: dict, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        RunConfig().with_overrides(overrides)


def test_unknown_preset_lists_known(tmp_path) -> None:
    with pytest.raises(UsageError, match="default"):
        load_config("nonexistent-preset")
    bad = tmp_path / "bad.toml"
    bad.write_text("[detect\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_config(str(bad))


def test_error_family_is_catchable_both_ways() -> None:
    from panini_video import errors

    assert issubclass(errors.InputNotFoundError, FileNotFoundError)
    assert issubclass(errors.CheckpointMismatchError, ValueError)
    assert issubclass(errors.ProcessingError, RuntimeError)
    codes = {c.exit_code for c in vars(errors).values() if isinstance(c, type) and issubclass(c, PaniniError)}
    assert {1, 2, 3, 4, 5, 6, 130} <= codes
