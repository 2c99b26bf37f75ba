"""Load a config: preset name or YAML path, merged over typed defaults, then `key=value` overrides.

    cfg = load_config("my_run.yaml", ["train.steps=100", "masks.0.spatial_scale=0.2"])

Every problem is reported as a `ConfigError` naming the dotted key, before any work starts.
A YAML file may start from another one with `base: <preset or path>`.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from videojepa.config.base import dotted_keys
from videojepa.config.schema import (
    DEFAULT_METHOD,
    MethodSection,
    PlanConfig,
    PretrainConfig,
    method_section,
)
from videojepa.errors import ConfigError, UserError
from videojepa.models.registry import list_models
from videojepa.utils.files import atomic_write_text

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"

AnyConfig = PretrainConfig | PlanConfig


def list_presets() -> list[str]:
    return sorted(str(p.relative_to(PRESET_DIR).with_suffix("")) for p in PRESET_DIR.rglob("*.yaml"))


def resolve_config_path(source: str, relative_to: Path | None = None) -> Path:
    """A preset name (see `videojepa models --presets`) or a path to a YAML file."""
    candidates = [Path(source)]
    if relative_to is not None:
        candidates.insert(0, relative_to / source)
    candidates.append(PRESET_DIR / (source if source.endswith((".yaml", ".yml")) else source + ".yaml"))
    for path in candidates:
        if path.is_file():
            return path
    raise UserError(f"no config file or preset named '{source}'; presets: {', '.join(list_presets())}")


def read_yaml(path: Path) -> dict:
    """Read a YAML config, resolving `base:` chains (later files win, dicts merge, lists replace)."""
    merged: dict = {}
    for _, data in read_chain(path):
        merged = deep_merge(merged, data)
    return merged


def read_chain(path: Path, _seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict]]:
    """A YAML config and the files its `base:` chain starts from, root first, each without its `base` key."""
    if path in _seen:
        raise UserError(f"config 'base:' chain loops back to {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    migrate_moved_keys(data, str(path))
    base = data.pop("base", None)
    if base is None:
        return [(path, data)]
    return [*read_chain(resolve_config_path(str(base), relative_to=path.parent), _seen + (path,)), (path, data)]


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"override '{text}' is not of the form key=value (e.g. train.steps=100)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def apply_override(data: dict, key: str, value: Any) -> None:
    """Set a dotted key; integer parts index into lists (`masks.1.num_blocks=4`)."""
    parts = key.split(".")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            node = node[_list_index(node, part, where)]
        else:
            if not isinstance(node.get(part, {}), (dict, list)):
                raise ConfigError(where, f"is a value, not a section, so '{key}' does not exist")
            node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, key)] = value
    else:
        node[last] = value


def _list_index(node: list, part: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(where, f"index must be 0..{len(node) - 1} for a list of {len(node)} entries")
    return int(part)


# Keys that moved: old dotted key -> new one. Accepted with a warning for one release.
MOVED_KEYS = {"train.ema": "method.ema"}


def migrate_moved_keys(data: dict, where: str = "config") -> dict:
    """Move deprecated keys to their new place in a raw config dict (in place; returns it)."""
    for old, new in MOVED_KEYS.items():
        old_section, old_key = old.split(".")
        new_section, new_key = new.split(".")
        if old_key not in (data.get(old_section) or {}):
            continue
        value = data[old_section].pop(old_key)
        if new_key in (data.get(new_section) or {}):
            raise ConfigError(old, f"is deprecated and {new} is set too; keep only {new}")
        data.setdefault(new_section, {})[new_key] = value
        warnings.warn(
            f"{where}: {old} is deprecated, use {new} (accepted until the next release)",
            DeprecationWarning,
            stacklevel=3,
        )
    return data


def moved_key(key: str) -> str:
    """The current name of an override's key (warns when it is a deprecated one)."""
    if key in MOVED_KEYS:
        warnings.warn(
            f"override {key}: deprecated, use {MOVED_KEYS[key]} (accepted until the next release)",
            DeprecationWarning,
            stacklevel=4,
        )
        return MOVED_KEYS[key]
    return key


def load_config(
    source: str | Path | dict, overrides: Iterable[str | tuple[str, Any]] = (), schema: type[BaseModel] = PretrainConfig
) -> AnyConfig:
    """Resolve a preset/path/dict plus overrides into a validated config.

    `schema` is the typed defaults to merge over (pretraining by default; evaluation passes
    its own). A schema may define `check()` for rules across keys; it raises ConfigError.
    """
    if isinstance(source, dict):
        data = copy.deepcopy(source)
    else:
        data = read_yaml(resolve_config_path(str(source)))
    if schema is PretrainConfig and "stages" in data:
        return load_plan(data, overrides)
    if isinstance(source, dict):
        migrate_moved_keys(data)
    given = dotted_keys(data)
    # Start from the full defaults so overrides can reach into default lists (masks.0...); a method's section
    # gets its defaults from the method it names, in validation.
    defaults = schema().model_dump()
    if schema is PretrainConfig:
        defaults.pop("method")
    data = deep_merge(defaults, data)
    for item in overrides:  # "key=value" text, or (key, value) already parsed
        key, value = parse_override(item) if isinstance(item, str) else item
        key = moved_key(key) if schema is PretrainConfig else key
        apply_override(data, key, value)
        given |= {".".join(key.split(".")[:i]) for i in range(1, key.count(".") + 2)}
    cfg = validate(schema, data)
    cfg._given = frozenset(given)
    if isinstance(cfg, PretrainConfig):
        check_consistency(cfg)
    elif hasattr(cfg, "check"):
        cfg.check()
    return cfg


def load_plan(data: dict, overrides: Iterable[str]) -> PlanConfig:
    """A plan's overrides go to every stage (`train.batch_size=64`), except `stages.N...` ones."""
    per_stage = []
    for text in overrides:
        key, value = parse_override(text)
        if key.split(".")[0] == "stages":
            apply_override(data, key, value)
        else:
            per_stage.append((key, value))
    plan = validate(PlanConfig, data)
    for stage in plan.stages:
        stage.overrides.update(per_stage)
        try:  # fail now, not halfway through a multi-stage job
            stage_config(stage)
        except ConfigError as err:
            raise ConfigError("", f"stage '{stage.name}' ({stage.config}): {err}") from None
    return plan


def stage_config(stage) -> PretrainConfig:
    return load_config(stage.config, list(stage.overrides.items()))


def validate(schema: type[BaseModel], data: dict) -> BaseModel:
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise ConfigError("", "; ".join(_describe(e, schema, data) for e in err.errors())) from None


def _describe(error: dict, schema: type[BaseModel], data: dict) -> str:
    loc = [str(p) for p in error["loc"]]
    key = ".".join(loc)
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        allowed = _keys_at(schema, loc[:-1], data)
        hint = difflib.get_close_matches(loc[-1], allowed, n=1)
        guess = f"did you mean '{'.'.join(loc[:-1] + hint[:1])}'? " if hint else ""
        return f"unknown key '{key}'; {guess}allowed keys here: {', '.join(allowed)}"
    if kind == "literal_error":
        return f"{key}: got {value!r}; allowed values: {error['ctx']['expected']}"
    if kind == "missing":
        return f"{key}: required key is missing"
    return f"{key}: {error['msg'].replace('Input should be', 'must be')} (got {value!r})"


def _keys_at(schema: type[BaseModel], loc: list[str], data: Any = None) -> list[str]:
    """Field names of the (sub)section at `loc`, for 'allowed keys' hints (a method section: the one of the method
    that `data` names there)."""
    model: Any = schema
    for part in loc:
        data = data[int(part)] if isinstance(data, list) and part.isdigit() and int(part) < len(data) else data
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        data = data.get(part) if isinstance(data, dict) else None
        if model is None:
            return []
        if issubclass(model, MethodSection):
            with contextlib.suppress(ConfigError):
                model = method_section((data or {}).get("name", DEFAULT_METHOD))
    return list(model.model_fields)


def check_consistency(cfg: PretrainConfig) -> None:
    """Cross-key rules that single fields cannot express. The method's own rules are its section's (checked when
    the config is validated) and `Method.check_config` (run by the trainer and the CLI: `videojepa.methods`)."""
    models = list_models()
    if cfg.model.name not in models:
        raise ConfigError("model.name", f"unknown model {cfg.model.name!r}; allowed values: {', '.join(models)}")
    patch, tubelet = cfg.model.patch_size, cfg.model.tubelet_size
    if cfg.data.crop_size % patch:
        examples = ", ".join(
            str(patch * k) for k in range(max(1, cfg.data.crop_size // patch), cfg.data.crop_size // patch + 3)
        )
        raise ConfigError(
            "data.crop_size",
            f"{cfg.data.crop_size} is not divisible by model.patch_size={patch}; "
            f"allowed: multiples of {patch} (e.g. {examples})",
        )
    if cfg.data.frames_per_clip % tubelet:
        raise ConfigError(
            "data.frames_per_clip",
            f"{cfg.data.frames_per_clip} is not divisible by "
            f"model.tubelet_size={tubelet}; allowed: multiples of {tubelet}",
        )
    if cfg.predictor.embed_dim % cfg.predictor.num_heads:
        raise ConfigError(
            "predictor.embed_dim",
            f"{cfg.predictor.embed_dim} is not divisible by predictor.num_heads={cfg.predictor.num_heads}",
        )
    if cfg.train.batch_size % cfg.train.accum_steps:
        raise ConfigError(
            "train.batch_size", f"{cfg.train.batch_size} is not divisible by train.accum_steps={cfg.train.accum_steps}"
        )
    for key, (lo, hi) in {
        "data.random_resize_scale": cfg.data.random_resize_scale,
        "data.random_resize_aspect_ratio": cfg.data.random_resize_aspect_ratio,
        **{f"masks.{i}.aspect_ratio": m.aspect_ratio for i, m in enumerate(cfg.masks)},
    }.items():
        if not 0 < lo <= hi:
            raise ConfigError(key, f"({lo}, {hi}) must be an increasing pair of positive numbers")
    check_train_schedule(cfg.train)
    if not cfg.masks:
        raise ConfigError("masks", "at least one mask generator is required")
    check_pretraining_data(cfg)


def check_train_schedule(train) -> None:
    """Rules across the `train` keys of every trainer config (pretraining and fine-tuning)."""
    if not all(0.0 <= v <= 1.0 for v in train.betas):
        raise ConfigError("train.betas", f"{train.betas} must lie in [0, 1]")
    if train.lr_schedule != "wsd" and train.cooldown_steps:
        raise ConfigError(
            "train.cooldown_steps",
            f"{train.cooldown_steps}: a cooldown belongs to train.lr_schedule=wsd (now {train.lr_schedule!r}); "
            f"set it to 0 or use wsd",
        )
    horizon = train.steps * train.schedule_scale
    if train.cooldown_steps and train.warmup_steps + train.cooldown_steps > horizon:
        raise ConfigError(
            "train.cooldown_steps",
            f"{train.cooldown_steps}: warmup ({train.warmup_steps}) and cooldown together exceed the schedule's "
            f"horizon train.steps x train.schedule_scale = {horizon:g}",
        )


def check_pretraining_data(cfg: PretrainConfig) -> None:
    """Pretraining feeds the model ONE clip and ONE view per video (a batch is B x C x T x H x W); the
    multi-clip / multi-view keys of the shared data section are evaluation settings (`videojepa probe`)."""
    for key in ("num_clips", "num_views"):
        value = getattr(cfg.data, key)
        if value != 1:
            raise ConfigError(
                f"data.{key}",
                f"{value} is an evaluation setting: pretraining reads one clip and one "
                f"view per video (allowed: 1); set it in a probe config instead",
            )


def to_dict(cfg: BaseModel) -> dict:
    return cfg.model_dump(mode="json")


def save_config(cfg: BaseModel, path: str | Path) -> None:
    """Write the resolved config (what the run actually used) as YAML, atomically: under torchrun other
    ranks may read it while rank 0 writes, and a crash mid-write must not leave a truncated file."""
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
