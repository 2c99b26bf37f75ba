"""Pretraining methods: one small module each, registered by name and built from a config.

Importing this package registers the built-in methods; `register_method` adds others.
"""

from videojepa.methods.base import Method
from videojepa.methods.masked import LatentPrediction, MaskedPrediction
from videojepa.methods.pixel import PixelReconstruction, VideoMAE
from videojepa.methods.registry import (
    build_method,
    check_config,
    get_method,
    list_methods,
    register_method,
    unregister_method,
)
from videojepa.methods.salt_student import SALTStudent
from videojepa.methods.vjepa import VJEPA

__all__ = [
    "Method",
    "MaskedPrediction",
    "LatentPrediction",
    "register_method",
    "unregister_method",
    "get_method",
    "list_methods",
    "build_method",
    "check_config",
    "VJEPA",
    "PixelReconstruction",
    "VideoMAE",
    "SALTStudent",
]
