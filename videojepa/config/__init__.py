"""Configuration: typed defaults (`schema`), YAML presets and overrides (`loader`)."""

from videojepa.config.loader import list_presets, load_config, save_config, to_dict
from videojepa.config.schema import MaskConfig, PlanConfig, PretrainConfig

__all__ = ["load_config", "save_config", "to_dict", "list_presets", "PretrainConfig", "PlanConfig", "MaskConfig"]
