"""Probe defaults that run on every encoder: `probe.heads` follows the encoder card, `probe.blocks` counts the
self-attention blocks before the cross-attention (`attentive3` = 3)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

pytestmark = pytest.mark.usefixtures("one_thread")


def test_probe_defaults_follow_the_encoder_card(pico, tiny_synth, tmp_path, cli):
    """No probe.heads anywhere: the attentive probe takes the encoder's 2 heads; 12 is refused in one line."""
    config = tmp_path / "probe.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "probe": {"checkpoint": str(pico)},
                "data": {
                    "train": f"{tiny_synth}/motion/train.csv",
                    "val": f"{tiny_synth}/motion/val.csv",
                    "num_workers": 0,
                },
                "optim": {"epochs": 1},
            }
        )
    )
    code, out, err = cli("probe", config, f"run.dir={tmp_path}/a", "--quiet")
    assert code == 0, err
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["probe"]["heads"] == 2 and results["probe"]["blocks"] == 0
    assert results["tasks"][0]["protocol"]["frames_per_clip"] == 4  # the card's protocol, as before
    code, out, err = cli("probe", config, f"run.dir={tmp_path}/b", "probe.blocks=1", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "b" / "results.json").read_text())["probe"]["blocks"] == 1
    code, out, err = cli("probe", config, f"run.dir={tmp_path}/c", "probe.heads=12")
    assert code == 2 and err.count("\n") == 1 and "probe.heads=12 does not divide the feature width 64" in err
    code, out, err = cli("probe", config, f"run.dir={tmp_path}/c", "probe.kind=attentive3", "probe.blocks=2")
    assert code == 2 and "probe.blocks: 2 contradicts probe.kind=attentive3" in err
    code, out, err = cli("probe", config, f"run.dir={tmp_path}/c", "probe.kind=linear", "probe.blocks=2")
    assert code == 2 and "only applies to attentive probes" in err


def test_attentive3_is_attentive_with_three_blocks():
    from videojepa.eval.probes import build_probe

    torch.manual_seed(0)
    a = build_probe("attentive3", 64, 5, num_heads=4)
    torch.manual_seed(0)
    b = build_probe("attentive", 64, 5, num_heads=4, blocks=3)
    assert len(a.blocks) == 3 and a.arch == b.arch
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
