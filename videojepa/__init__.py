"""videojepa: self-supervised video representation learning (V-JEPA, SALT).

Importing the package registers the built-in methods (`videojepa.methods`), whose config sections a
pretraining config's `method:` is validated with.
"""

from videojepa import methods  # noqa: F401 - registers the built-in methods and their config sections
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
