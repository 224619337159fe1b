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


def _bad_values(limit, hint_types: set[type]) -> list[object]:
    """Values outside a field's range, non-finite and wrongly typed ones."""
    bad: list[object] = [float("nan"), float("inf"), float("-inf"), "text", True, [1]]
    if limit is not None and limit.lo is not None:
        bad.append(limit.lo if limit.lo_open else limit.lo - 1)
        bad.append(-(10**9))
    if limit is not None and limit.hi is not None:
        bad.append(limit.hi * 10 + 1 if float in hint_types else int(limit.hi) * 10 + 1)
        bad.append(10**30)
    if float not in hint_types:
        bad.append(2.5)  # not whole
    return bad


def _walk_fields():
    import dataclasses
    from typing import get_args, get_origin, get_type_hints

    from panini_video.config import SECTIONS

    for section in SECTIONS:
        hints = get_type_hints(section)
        for f in dataclasses.fields(section):
            hint = hints[f.name]
            types = set(get_args(hint)) if get_args(hint) and get_origin(hint) is not None else {hint}
            limit = f.metadata.get("limit")
            if get_origin(hint) is not None and str(get_origin(hint)) == "typing.Literal":
                yield section.section, f.name, ["banana", 1, None]
            elif limit is not None:
                yield section.section, f.name, _bad_values(limit, types)
            elif bool in types:
                yield section.section, f.name, [1, "yes", float("nan")]


WALK = list(_walk_fields())


@pytest.mark.parametrize(("section", "key", "values"), WALK, ids=[f"{s}.{k}" for s, k, _ in WALK])
def test_every_setting_refuses_bad_values_from_a_preset(section: str, key: str, values: list[object]) -> None:
    for value in values:
        if value is None:  # None means "flag not given" in overrides; a preset cannot say it
            continue
        with pytest.raises(UsageError, match=rf"{section}\.{key}"):
            RunConfig().with_overrides({section: {key: value}})


def test_the_walk_covers_every_numeric_and_choice_setting() -> None:
    import dataclasses

    from panini_video.config import SECTIONS

    walked = {(s, k) for s, k, _ in WALK}
    free = {("io", n) for n in ("codec", "crf", "preset", "pix_fmt", "profile")}  # checked by the encoder
    free |= {("detect", "weights"), ("detect", "device"), ("restore", "device"), ("restore", "model")}  # names
    free |= {("live", "input_format"), ("live", "input_size")}  # a device's names; the size: test below
    every = {(c.section, f.name) for c in SECTIONS for f in dataclasses.fields(c)}
    assert every - walked - free == set()


@pytest.mark.parametrize("size", ["1280", "1280x", "x720", "0x720", "1280X720", "12800000x720", "-5x3"])
def test_a_capture_size_must_be_width_x_height(size: str) -> None:
    with pytest.raises(UsageError, match=r"live.input_size \(--input-size\) must be WIDTHxHEIGHT"):
        RunConfig().with_overrides({"live": {"input_size": size}})


def test_live_settings_parse_counts_rates_and_forever() -> None:
    cfg = RunConfig().with_overrides({"live": {"reconnect": "forever", "bitrate": "2.5M", "input_size": "640x480"}})
    assert (cfg.live.reconnect, cfg.live.bitrate, cfg.live.input_size) == (-1, 2_500_000, "640x480")
    assert RunConfig().with_overrides({"live": {"reconnect": "3", "bitrate": "800k"}}).live.bitrate == 800_000
    with pytest.raises(UsageError, match="not a count or 'forever'"):
        RunConfig().with_overrides({"live": {"reconnect": "often"}})
    with pytest.raises(UsageError, match="not a bit rate"):
        RunConfig().with_overrides({"live": {"bitrate": "fast"}})


def test_good_values_at_the_edges_are_taken() -> None:
    cfg = RunConfig().with_overrides(
        {
            "detect": {"det_size": 64, "threshold": 1.0},
            "restore": {"dre_ema": 0, "upscale": 8},
            "smooth": {"strength": 0},
        }
    )
    assert (cfg.detect.det_size, cfg.restore.dre_ema, cfg.smooth.strength) == (64, 0.0, 0.0)
    assert RunConfig().with_overrides({"runtime": {"max_memory": "1.5G"}}).runtime.max_memory == int(1.5 * 2**30)
