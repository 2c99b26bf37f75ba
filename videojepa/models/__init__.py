"""Encoders (video ViT), predictors and pixel decoders."""

from videojepa.models.predictor import PixelDecoder, Predictor
from videojepa.models.registry import (
    ARCHITECTURES,
    build_encoder,
    count_parameters,
    create_model,
    encoder_from_arch,
    list_models,
    non_embedding_parameters,
)
from videojepa.models.vit import VisionTransformer

__all__ = [
    "VisionTransformer",
    "Predictor",
    "PixelDecoder",
    "create_model",
    "list_models",
    "count_parameters",
    "build_encoder",
    "encoder_from_arch",
    "non_embedding_parameters",
    "ARCHITECTURES",
]
