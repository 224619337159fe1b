"""PaniniNet: official key layout, parameter counts, forward/backward, API contracts."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from panini_video.errors import InputError
from panini_video.models import VARIANTS, PaniniNet
from panini_video.models.keys import expected_keys, parse_key_list

SHARED_KEYS = Path(__file__).resolve().parents[3] / "shared" / "panini" / "keys"

# Generator parameter counts of the official models (OFFICIAL_ARCHITECTURE.md, table 6.3).
SPEC_PARAMETERS = {"mfr": 94_339_836, "sr": 108_847_096}


def meta_model(variant: str) -> PaniniNet:
    with torch.device("meta"):
        return PaniniNet(VARIANTS[variant])


@pytest.mark.parametrize("variant", ["mfr", "sr"])
def test_state_dict_keys_shapes_and_order_equal_the_official_list(variant: str) -> None:
    state = meta_model(variant).state_dict()
    got = [(k, tuple(v.shape)) for k, v in state.items()]
    assert got == list(expected_keys(variant).items())
    assert state["generator.injected_noise_0"].dtype == torch.float32
    bn_counts = [k for k in state if k.endswith("num_batches_tracked")]
    assert bn_counts and all(state[k].dtype == torch.int64 for k in bn_counts)


@pytest.mark.parametrize(("variant", "name"), [("mfr", "MFR"), ("sr", "SR")])
def test_packaged_key_lists_equal_the_shared_lists(variant: str, name: str) -> None:
    shared = SHARED_KEYS / f"{name}_state_dict.txt"
    if not shared.is_file():
        pytest.skip(f"shared key list not found at {shared}")
    official = {k.removeprefix("generator."): v for k, v in parse_key_list(shared.read_text()).items()}
    assert list(official.items()) == list(expected_keys(variant).items())


@pytest.mark.parametrize("variant", ["mfr", "sr"])
def test_parameter_count_equals_the_spec(variant: str) -> None:
    assert sum(p.numel() for p in meta_model(variant).parameters()) == SPEC_PARAMETERS[variant]


def test_tiny_key_layout_is_the_mfr_layout_at_small_widths() -> None:
    def pattern(keys: list[str]) -> set[str]:
        return {re.sub(r"\d+", "#", k) for k in keys}

    assert pattern(list(meta_model("tiny").state_dict())) == pattern(list(expected_keys("mfr")))


def test_tiny_forward_shape_finite_and_deterministic(
    tiny: PaniniNet, random_faces: Callable[..., torch.Tensor]
) -> None:
    lq = random_faces(tiny.config, 2)
    with torch.no_grad():
        a = tiny(lq)
        b = tiny(lq)
    assert a.shape == (2, 3, 128, 128)
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])  # the two samples are different faces


@pytest.mark.parametrize("fixture", ["tiny", "tiny_choice"])
def test_batch_independence(fixture: str, request: pytest.FixtureRequest, random_faces: Callable) -> None:
    model: PaniniNet = request.getfixturevalue(fixture)
    lq = random_faces(model.config, 4, seed=3)
    with torch.no_grad():
        together = model(lq)
        alone = model(lq[2:3])
    torch.testing.assert_close(alone[0], together[2], rtol=0, atol=1e-5)


def test_backward_reaches_encoder_dre_masks_and_generator(
    tiny: PaniniNet, random_faces: Callable[..., torch.Tensor]
) -> None:
    tiny.train()
    lq = random_faces(tiny.config, 2)
    tiny(lq).square().mean().backward()
    for name in [
        "encoder.0.0.conv_first.weight",
        "encoder.0.1.fea_preprocess.weight",
        "encoder.0.1.SpatialGate.spatial.conv.weight",
        f"encoder.{tiny.config.num_fusions}.3.weight",
        "deg_encoder.E.0.weight",
        "AFS_maskGen.mapping.0.weight",
        "fusion_out.0.weight",
        "generator.conv1.conv.weight_orig",
        "generator.convs.0.conv.weight_orig",
        "generator.to_rgbs.0.conv.weight_orig",
        "generator.constant_input.input",
    ]:
        grad = tiny.get_parameter(name).grad
        assert grad is not None, name
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name
    # The mapping network and the DRE projection head are not part of Panini's forward.
    assert tiny.get_parameter("generator.style_mapping.1.bias").grad is None
    assert tiny.get_parameter("deg_encoder.mlp.0.weight").grad is None


def test_eval_puts_every_batchnorm_in_eval_mode(tiny: PaniniNet) -> None:
    tiny.train()
    tiny.eval()
    bns = [m for m in tiny.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 7  # 6 in the DRE, 1 in CBAM
    assert not any(m.training for m in bns)


@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (1, 3, 64, 63), (1, 1, 64, 64), (3, 64, 64), (0, 3, 64, 64)])
def test_wrong_input_shape_is_a_clear_error(tiny: PaniniNet, shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match=r"\[B, 3, 64, 64\]"):
        tiny(torch.zeros(shape))
    with pytest.raises(ValueError):  # InputError is a ValueError
        tiny.degradation_code(torch.zeros(shape))


def test_integer_input_is_rejected(tiny: PaniniNet) -> None:
    with pytest.raises(InputError, match="floating-point"):
        tiny(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_degradation_code_drives_the_masks(tiny: PaniniNet, random_faces: Callable[..., torch.Tensor]) -> None:
    lq = random_faces(tiny.config, 2)
    with torch.no_grad():
        code = tiny.degradation_code(lq)
        assert code.shape == (2, tiny.config.code_channels)
        m1, m2 = tiny.dafi_masks(code)
        assert m1.shape == m2.shape == (2, tiny.config.num_fusions, tiny.config.fusion_channels)
        torch.testing.assert_close(m1 + m2, torch.ones_like(m1))
        assert torch.equal(tiny(lq, code), tiny(lq))
        assert torch.equal(tiny(lq, code.double()), tiny(lq))  # a cached code in another dtype
        # Another sample's code changes the output: the code really is used.
        swapped = tiny(lq, code.flip(0))
    assert not torch.allclose(swapped, tiny(lq))


def test_choice_vector_path_gives_input_independent_masks(
    tiny_choice: PaniniNet, random_faces: Callable[..., torch.Tensor]
) -> None:
    lq = random_faces(tiny_choice.config, 3)
    assert not hasattr(tiny_choice, "deg_encoder")
    with torch.no_grad():
        code = tiny_choice.degradation_code(lq)
        assert torch.equal(code, tiny_choice.choice_vector.expand(3, -1))
        m1, _ = tiny_choice.dafi_masks(code)
        assert torch.equal(m1[0], m1[2])
        assert torch.isfinite(tiny_choice(lq)).all()


def test_code_of_the_wrong_shape_is_rejected(tiny: PaniniNet) -> None:
    lq = torch.zeros(2, 3, 64, 64)
    with pytest.raises(InputError, match="degradation code"):
        tiny(lq, torch.zeros(2, 7))
    with pytest.raises(InputError, match="batch"):
        tiny(lq, torch.zeros(3, tiny.config.code_channels))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["mfr", "sr"])
def test_full_size_forward_once(variant: str, random_faces: Callable[..., torch.Tensor]) -> None:
    torch.manual_seed(0)
    model = PaniniNet(VARIANTS[variant]).eval()
    lq = random_faces(model.config, 1)
    with torch.no_grad():
        out = model(lq)
    assert out.shape == (1, 3, 1024, 1024)
    assert torch.isfinite(out).all()


# Per-face compute of the official models, batch 1 (OFFICIAL_ARCHITECTURE.md, table 6.2).
SPEC_GFLOPS = {"mfr": 448.28, "sr": 321.82}


@pytest.mark.parametrize("variant", ["mfr", "sr"])
def test_compute_equals_the_spec(variant: str) -> None:
    model = meta_model(variant).eval()
    size = model.config.in_size
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size, device="meta"))
    assert counter.get_total_flops() / 1e9 == pytest.approx(SPEC_GFLOPS[variant], abs=0.01)
