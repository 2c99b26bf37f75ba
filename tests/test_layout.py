"""The package layout users import from: presets found in `videojepa/presets/`, the demo package, `videojepa.train`."""

from __future__ import annotations

import pytest


def test_presets_are_found_by_name_in_the_presets_folder():
    from videojepa.config.loader import PRESET_DIR, list_presets, resolve_config_path

    assert PRESET_DIR.name == "presets" and PRESET_DIR.parent.name == "videojepa"
    names = list_presets()
    for name in (
        "vjepa/vitl16",
        "salt/vitl16_teacher",
        "salt/vitl16_student",
        "paper/salt_vitl",
        "demo/vjepa",
        "demo/probe",
    ):
        assert name in names
        assert resolve_config_path(name) == PRESET_DIR / f"{name}.yaml"


def test_demo_package_exports_its_entry_points():
    import videojepa.demo as demo
    from videojepa.demo import run

    assert demo.SIZES is run.SIZES and demo.run_demo is run.run_demo
    assert set(demo.SIZES) == {"full", "quick"}


def test_train_package_names_resolve_to_their_modules():
    import videojepa.train as train
    from videojepa.train.checkpoint import save_checkpoint
    from videojepa.train.trainer import Trainer

    assert train.Trainer is Trainer and train.save_checkpoint is save_checkpoint
    for name in train.__all__:
        assert getattr(train, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'Trainr'"):
        train.Trainr  # noqa: B018 - a misspelt name is an error, not None
