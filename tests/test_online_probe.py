"""The online probe during pretraining (`train.online_probe`): its top-1 at the asked steps in metrics.jsonl and
the log, its share of the run's time, the training's losses bit for bit those of a run without it, and a resume
that adds or drops it."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from conftest import tiny_overrides

from videojepa.config.loader import load_config
from videojepa.errors import UserError
from videojepa.eval.online import OnlineProbe
from videojepa.train.hooks import untouched
from videojepa.train.logger import read_metrics
from videojepa.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def config(data, run_dir, probe: bool):
    extra = {"train.steps": 10, "train.checkpoint_every": 10}
    if probe:
        extra["train.online_probe"] = (
            f"{{train: {data}/motion/train.csv, val: {data}/motion/val.csv, every: 4, epochs: 3, "
            "kinds: [linear_frames, knn]}"
        )
    return load_config("demo/vjepa", tiny_overrides(data, run_dir, **extra))


def step_losses(run_dir) -> list[float]:
    return [r["loss"] for r in read_metrics(run_dir, "step")]


class Perturb:
    """A hook that changes the encoder's weights: what the comparison below must catch (negative control)."""

    name, every, key = "perturb", 4, "perturb"

    def __call__(self, step, encoder):
        next(encoder.parameters()).mul_(1.01)
        return {}


def test_online_probe_logs_top1_at_its_steps_and_never_changes_the_training(tiny_synth, tmp_path, cli):
    Trainer(config(tiny_synth, tmp_path / "plain", probe=False)).fit()
    cfg = config(tiny_synth, tmp_path / "probed", probe=True)
    Trainer(cfg, hooks=[OnlineProbe(cfg)]).fit()
    plain, probed = step_losses(tmp_path / "plain"), step_losses(tmp_path / "probed")
    assert len(plain) == 10 and probed == plain  # bit for bit

    records = read_metrics(tmp_path / "probed", "probe")
    assert [r["step"] for r in records] == [4, 8, 10]  # every 4 steps and after the last
    for r in records:
        assert 0 <= r["online_probe/linear_frames_top1"] <= 1 and 0 <= r["online_probe/knn_top1"] <= 1
        assert r["online_probe/seconds"] > 0 and 0 < r["online_probe/time_share"] < 1
    log = (tmp_path / "probed" / "train.log").read_text()
    assert "step 8 online probe: linear_frames_top1 " in log and "of this launch's time so far" in log

    # negative control: a hook that does touch the encoder changes the losses after its step
    Trainer(config(tiny_synth, tmp_path / "perturbed", probe=False), hooks=[Perturb()]).fit()
    perturbed = step_losses(tmp_path / "perturbed")
    assert perturbed[:4] == plain[:4] and perturbed[4:] != plain[4:]

    # adding or dropping the online probe does not block a resume (train.steps=12: two more steps)
    with pytest.warns(UserWarning, match="train.steps changed from 10 to 12"):
        code, out, err = cli(
            "pretrain", "demo/vjepa", *tiny_overrides(tiny_synth, tmp_path / "probed"), "train.steps=12"
        )
    assert code == 0, err
    assert step_losses(tmp_path / "probed")[:10] == plain and len(step_losses(tmp_path / "probed")) == 12


def test_untouched_restores_random_states_and_modes():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout()).train()
    net[1].eval()
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    with untouched(net):
        torch.rand(5), np.random.rand(5), random.random()
        net.eval()
        assert not torch.is_grad_enabled()
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]
    assert net.training and net[0].training and not net[1].training


def test_online_probe_errors_are_clear_and_early(tiny_synth, tmp_path):
    cfg = config(tiny_synth, tmp_path / "run", probe=True)
    with pytest.raises(UserError, match="train.online_probe is set but no online probe was given to the trainer"):
        Trainer(cfg)
    bad = cfg.model_copy(deep=True)
    bad.train.online_probe.kinds = ["attentive"]
    with pytest.raises(UserError, match="train.online_probe.kinds: 'attentive' is not a probe kind on pooled"):
        OnlineProbe(bad)
    bad.train.online_probe.kinds, bad.train.online_probe.val = ["knn"], str(tmp_path / "missing.csv")
    with pytest.raises(UserError, match="train.online_probe.val: data source not found"):
        OnlineProbe(bad)
