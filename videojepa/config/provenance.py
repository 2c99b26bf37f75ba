"""Where each key of a resolved config was set: a file of its `base:` chain (a preset by name, another YAML file
by path), a command-line override, or the typed default.

    sources = config_sources("vjepa2/vitl16", ["train.steps=10"])   # {"train.steps": "override", ...}

`videojepa config` prints it beside every value, so a preset can be read as a user would run it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from videojepa.config.loader import PRESET_DIR, moved_key, parse_override, read_chain, resolve_config_path

DEFAULT = "default"
OVERRIDE = "override"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested dicts and lists as dotted keys (`masks.0.num_blocks`); an empty list or dict is a leaf."""
    if isinstance(value, dict) and value:
        items = value.items()
    elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix.rstrip("."): value}
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(flatten(item, f"{prefix}{key}."))
    return out


def file_label(path: Path) -> str:
    """A preset by its name (`vjepa/vitl16`), any other file by its path."""
    try:
        return str(path.resolve().relative_to(PRESET_DIR).with_suffix(""))
    except ValueError:
        return str(path)


def config_sources(
    source: str | Path, overrides: Iterable[str | tuple[str, Any]], keys: Iterable[str], pretraining: bool = True
) -> dict[str, str]:
    """For each dotted key of a resolved config (`keys`), what set it: the last file of the base chain that gave
    it or a section or list holding it, a later override, or the default."""
    setters: dict[str, str] = {}
    for path, data in read_chain(resolve_config_path(str(source))):
        for key in flatten(data):
            setters[key] = file_label(path)
    for item in overrides:
        key, _ = parse_override(item) if isinstance(item, str) else item
        setters[moved_key(key) if pretraining else key] = OVERRIDE
    return {key: _setter_of(key, setters) for key in keys}


def _setter_of(key: str, setters: dict[str, str]) -> str:
    """The setter of `key` itself, else of the nearest section or list above it (a list set whole)."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        found = setters.get(".".join(parts[:end]))
        if found is not None:
            return found
    return DEFAULT
