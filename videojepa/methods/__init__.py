"""Pretraining methods: one small module each, built by name from a config."""
from videojepa.methods.base import Method
from videojepa.methods.pixel import PixelReconstruction, VideoMAE
from videojepa.methods.salt_student import SALTStudent
from videojepa.methods.vjepa import VJEPA

METHODS = {"vjepa": VJEPA, "salt_teacher": PixelReconstruction, "salt_student": SALTStudent, "videomae": VideoMAE}


def build_method(cfg) -> Method:
    return METHODS[cfg.method.name](cfg)


__all__ = ["Method", "METHODS", "build_method", "VJEPA", "PixelReconstruction", "VideoMAE", "SALTStudent"]
