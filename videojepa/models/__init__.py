"""Encoders (video ViT), predictors and pixel decoders."""
from videojepa.models.predictor import PixelDecoder, Predictor
from videojepa.models.registry import ARCHITECTURES, count_parameters, create_model, list_models
from videojepa.models.vit import VisionTransformer

__all__ = ["VisionTransformer", "Predictor", "PixelDecoder", "create_model", "list_models", "count_parameters",
           "ARCHITECTURES"]
