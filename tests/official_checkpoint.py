"""Synthetic checkpoints in the official mmcv layout, under the official keys and shapes."""

from __future__ import annotations

import datetime

import numpy as np
import torch

from panini_video.models.keys import expected_keys


def non_generator_keys() -> list[str]:
    """The 64 discriminator and 22 VGG keys of a GLEAN checkpoint (keys/checkpoint_non_generator_keys.txt)."""
    d = ["discriminator.convs.0.0.conv.weight_orig", "discriminator.convs.0.1.bias"]
    for i in range(1, 9):
        d += [f"discriminator.convs.{i}.{p}" for p in ("conv1.0.conv.weight_orig", "conv1.1.bias", "conv2.0.kernel")]
        d += [f"discriminator.convs.{i}.{p}" for p in ("conv2.1.conv.weight_orig", "conv2.2.bias", "skip.0.kernel")]
        d.append(f"discriminator.convs.{i}.skip.1.conv.weight_orig")
    d += [f"discriminator.final_conv.{p}" for p in ("0.conv.weight_orig", "1.bias")]
    d += [
        f"discriminator.final_linear.{p}" for p in ("0.bias", "0.linear.weight_orig", "1.bias", "1.linear.weight_orig")
    ]
    v = ["perceptual_loss.vgg.mean", "perceptual_loss.vgg.std"]
    v += [
        f"perceptual_loss.vgg.vgg_layers.{i}.{p}"
        for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21)
        for p in ("weight", "bias")
    ]
    assert len(d) == 64 and len(v) == 22
    return d + v


def generator_tensors(variant: str, real: bool) -> dict[str, torch.Tensor]:
    """Tensors under the official keys and shapes: distinct random values, or cheap zero-stride views."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for key, shape in expected_keys(variant).items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7, dtype=torch.int64)
        elif real:
            out[key] = torch.randn(shape, generator=g)
        else:
            out[key] = torch.zeros(1).expand(shape)  # saved as one element: keeps refusal tests small
    return out


def mmcv_checkpoint(generator: dict[str, torch.Tensor]) -> dict[str, object]:
    """An mmcv 1.x training checkpoint of the GLEAN wrapper around ``generator`` (spec section 5.3)."""
    state = {f"generator.{k}": v for k, v in generator.items()}
    state.update({k: torch.full((3,), 0.5) for k in non_generator_keys()})

    def adam(n: int) -> dict[str, object]:
        group = {"lr": 1e-4, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0, "amsgrad": False}
        return {
            "state": {
                i: {"step": torch.tensor(800000.0), "exp_avg": torch.zeros(3), "exp_avg_sq": torch.zeros(3)}
                for i in range(n)
            },
            "param_groups": [{**group, "params": list(range(n))}],
        }

    meta = {
        "mmedit_version": "0.14.0",
        "config": "exp_name = 'panini_ffhq_mfr'\nmodel = dict(type='GLEAN')\n",
        "exp_name": "panini_ffhq_mfr",
        "seed": np.int64(2021),
        "env_info": "sys.platform: linux",
        "epoch": 1,
        "iter": 800000,
        "mmcv_version": "1.5.0",
        "time": "Sun Apr  3 10:00:00 2022",
        "hook_msgs": {"last_ckpt": "work_dirs/panini_ffhq_mfr/iter_800000.pth"},
        "when": datetime.datetime(2022, 4, 3, 10, 0, 0),
        "loss_scale": np.float32(512.0),
        "schedule": np.array([1.0, 0.5]),
    }
    return {"meta": meta, "state_dict": state, "optimizer": {"generator": adam(4), "discriminator": adam(2)}}
