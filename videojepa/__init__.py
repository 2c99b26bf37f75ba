"""videojepa: self-supervised video representation learning (V-JEPA, SALT)."""

from videojepa.classifiers import load_classifier
from videojepa.encoder_io import load_encoder, save_encoder
from videojepa.interop import convert
from videojepa.models import PixelDecoder, Predictor, VisionTransformer, count_parameters, create_model, list_models

__version__ = "0.1.0"

__all__ = [
    "load_encoder",
    "load_classifier",
    "save_encoder",
    "convert",
    "create_model",
    "list_models",
    "count_parameters",
    "VisionTransformer",
    "Predictor",
    "PixelDecoder",
]
