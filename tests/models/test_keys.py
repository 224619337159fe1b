"""The packaged key lists and their loader."""

from __future__ import annotations

import pytest

from panini_video.models import VARIANTS, PaniniNet
from panini_video.models.keys import expected_keys, parse_key_list


def test_official_lists_have_the_documented_sizes() -> None:
    assert len(expected_keys("mfr")) == 327
    assert len(expected_keys("sr")) == 906
    assert next(iter(expected_keys("sr"))) == "choice_vector"
    assert expected_keys("mfr")["encoder.5.3.weight"] == (9216, 4096)
    assert expected_keys("mfr")["deg_encoder.E.1.num_batches_tracked"] == ()
    assert not any(k.startswith("generator.generator.") for k in expected_keys("mfr"))


def test_unlisted_variant_is_derived_from_the_network() -> None:
    model = PaniniNet(VARIANTS["tiny"])
    assert expected_keys("tiny") == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    with pytest.raises(KeyError, match="unknown Panini-Net variant"):
        expected_keys("huge")


def test_parse_key_list() -> None:
    assert parse_key_list("a.b\t1,2\nc\t\n\n") == {"a.b": (1, 2), "c": ()}
    with pytest.raises(ValueError, match="line 1"):
        parse_key_list("no tab here")
