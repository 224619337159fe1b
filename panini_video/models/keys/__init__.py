"""Expected state_dict keys and shapes of the official generators (``generator.`` prefix removed).

``mfr.txt`` and ``sr.txt`` hold one ``key<TAB>shape`` line per tensor, in checkpoint order,
shape comma-separated and empty for scalars (``num_batches_tracked``). They were taken from the
official module tree (see ``OFFICIAL_ARCHITECTURE.md`` section 7); the weights importer checks
official checkpoints against them and the tests check ``PaniniNet`` against them.
"""

from __future__ import annotations

from importlib import resources

LISTED = ("mfr", "sr")


def parse_key_list(text: str) -> dict[str, tuple[int, ...]]:
    """Parse ``key<TAB>shape`` lines into an ordered {key: shape} mapping."""
    out: dict[str, tuple[int, ...]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, shape = line.partition("\t")
        if not sep:
            raise ValueError(f"key list line {n} has no tab: {line!r}")
        out[key] = tuple(int(v) for v in shape.split(",")) if shape else ()
    return out


def expected_keys(variant: str) -> dict[str, tuple[int, ...]]:
    """{key: shape} of a variant's generator, in checkpoint order.

    ``mfr`` and ``sr`` come from the committed official lists; any other known variant (``tiny``)
    is derived from ``PaniniNet`` built on the meta device.
    """
    if variant in LISTED:
        return parse_key_list(resources.files(__name__).joinpath(f"{variant}.txt").read_text(encoding="utf-8"))
    import torch

    from panini_video.models.config import VARIANTS
    from panini_video.models.panini import PaniniNet

    if variant not in VARIANTS:
        raise KeyError(f"unknown Panini-Net variant {variant!r}; known: {', '.join(sorted(VARIANTS))}")
    with torch.device("meta"):
        model = PaniniNet(VARIANTS[variant])
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
