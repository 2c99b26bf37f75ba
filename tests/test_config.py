import subprocess
import sys

import pytest
import yaml

from videojepa.config import list_presets, load_config, save_config
from videojepa.config.schema import PlanConfig, PretrainConfig
from videojepa.errors import ConfigError, UserError


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_loads(preset):
    from videojepa.config.loader import read_yaml, resolve_config_path
    from videojepa.eval.config import ProbeConfig
    from videojepa.eval.localize_config import LocalizeConfig
    from videojepa.finetune.config import FinetuneConfig

    data = read_yaml(resolve_config_path(preset))
    schema = ProbeConfig if "probe" in data else FinetuneConfig if "finetune" in data else None
    if "labelmap" in (data.get("data") or {}):  # `videojepa localize` presets name the AVA label map
        schema = LocalizeConfig
    cfg = load_config(preset, schema=schema) if schema else load_config(preset)
    assert isinstance(cfg, schema or (PretrainConfig, PlanConfig))


def test_required_training_keys_exist():
    cfg = load_config("vjepa/vitl16")
    for key in ("run.dir", "run.seed", "train.steps", "train.batch_size", "data.train"):
        section, name = key.split(".")
        assert name in type(getattr(cfg, section)).model_fields, key


def test_overrides_reach_nested_keys_and_list_items():
    cfg = load_config(
        "salt/vitl16_student",  # method.teacher is salt_student's key
        ["train.steps=7", "masks.1.spatial_scale=0.5", "train.betas=[0.8, 0.9]", "method.teacher.model=vit_base"],
    )
    assert cfg.train.steps == 7 and cfg.masks[1].spatial_scale == 0.5 and cfg.train.betas == (0.8, 0.9)
    assert cfg.method.teacher.model == "vit_base"


def test_base_chain_merges_dicts_and_later_file_wins():
    cfg = load_config("salt/vitl16_student")
    assert cfg.method.name == "salt_student" and cfg.train.steps == 160_000
    assert cfg.train.grad_clip == 0.02  # inherited from salt/vitl16_teacher


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config("salt/vitl16_student", ["train.steps=5"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]["steps"] == 5


def test_plan_overrides_apply_to_every_stage():
    from videojepa.config.loader import stage_config

    plan = load_config("paper/salt_vitl", ["train.batch_size=8"])
    assert [stage_config(s).train.batch_size for s in plan.stages] == [8, 8]


@pytest.mark.parametrize(
    "override, key, hint",
    [
        ("train.stpes=3", "train.stpes", "did you mean 'train.steps'"),
        ("train.steps=abc", "train.steps", "integer"),
        ("train.precision=fp8", "train.precision", "'fp32', 'bf16' or 'fp16'"),
        ("data.crop_size=100", "data.crop_size", "multiples of 16"),
        ("data.frames_per_clip=15", "data.frames_per_clip", "multiples of 2"),
        ("model.name=vit_enormous", "model.name", "vit_large"),
        ("masks.0.spatial_scale=1.5", "masks.0.spatial_scale", "less than or equal to 1"),
        ("masks.3.num_blocks=1", "masks.3", "index must be 0..1"),
    ],
)
def test_config_errors_name_the_key_and_allowed_values(cli, override, key, hint):
    code, out, err = cli("flops", "paper/vjepa2_vitl_224", override)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert key in err and hint in err and "Traceback" not in err


def test_config_error_in_a_real_process_has_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "videojepa", "flops", "vjepa/vitl16", "train.stpes=3"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "train.stpes" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_unknown_preset_lists_the_presets():
    with pytest.raises(UserError, match="vjepa/vitl16"):
        load_config("vjepa/vitl17")


def test_salt_student_requires_a_teacher():
    with pytest.raises(ConfigError, match="method.teacher.checkpoint"):
        load_config("salt/vitl16_student", ["method.teacher.checkpoint=null", "method.teacher.model=null"])


def test_malformed_override_is_a_user_error():
    with pytest.raises(UserError, match="key=value"):
        load_config("vjepa/vitl16", ["train.steps"])


def test_train_ema_is_accepted_as_method_ema_with_a_deprecation_warning(tmp_path):
    with pytest.warns(DeprecationWarning, match=r"train\.ema.*method\.ema"):
        cfg = load_config("demo/vjepa", ["train.ema=[0.9, 0.95]"])
    assert cfg.method.ema == (0.9, 0.95)
    old = tmp_path / "old.yaml"
    old.write_text("base: demo/vjepa\ntrain:\n  ema: [0.99, 1.0]\n")
    with pytest.warns(DeprecationWarning):
        assert load_config(str(old)).method.ema == (0.99, 1.0)
    both = tmp_path / "both.yaml"
    both.write_text("base: demo/vjepa\ntrain:\n  ema: [0.99, 1.0]\nmethod:\n  ema: [0.9, 1.0]\n")
    with pytest.raises(ConfigError, match=r"train\.ema: is deprecated and method\.ema is set too"):
        load_config(str(both))
