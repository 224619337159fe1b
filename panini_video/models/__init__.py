"""Panini-Net in plain PyTorch: configs and variants (networks and weight files follow)."""

from panini_video.models.config import VARIANTS, PaniniConfig

__all__ = ["PaniniConfig", "VARIANTS"]
