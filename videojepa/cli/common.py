"""Shared CLI helpers: the CONFIG + key=value arguments every config-driven command takes."""

from __future__ import annotations

import argparse

from videojepa.config.loader import list_presets


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        metavar="CONFIG",
        help="preset name (e.g. demo/vjepa; `videojepa models --presets` lists them) or YAML path",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides, e.g. train.steps=100 masks.0.spatial_scale=0.2",
    )


def presets_epilog() -> str:
    return "presets: " + ", ".join(list_presets())
