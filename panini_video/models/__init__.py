"""Panini-Net in plain PyTorch: configs, variants, the network, and its weight files.

Modules, bottom-up: ``layers`` (FIR filtering, fused activation, equalized lr), ``stylegan2``,
``rrdb``, ``cbam``, ``encoder``, ``dre``, ``dafi``, ``panini`` (PaniniNet), ``serialize``
(safetensors save/load), ``keys`` (the official key lists).
"""

from panini_video.models.config import VARIANTS, PaniniConfig
from panini_video.models.panini import PaniniNet
from panini_video.models.serialize import load_model, read_state_dict, save_model, save_state_dict

__all__ = ["PaniniConfig", "PaniniNet", "VARIANTS", "load_model", "read_state_dict", "save_model", "save_state_dict"]
