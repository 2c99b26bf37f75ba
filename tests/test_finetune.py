"""`videojepa finetune`: the trainer on a classification task, resume, frozen encoder, multi-view test, outputs."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch
from conftest import TORCHRUN_2

from videojepa.config import load_config
from videojepa.errors import ConfigError
from videojepa.finetune.config import FinetuneConfig
from videojepa.finetune.evaluate import evaluate, multiview_logits
from videojepa.train import checkpoint as ckpt
from videojepa.train.logger import read_metrics


def tiny(data, run_dir, **extra):
    """The paper's recipe shrunk to a few-second CPU run on the tiny synthetic motion task."""
    settings = {
        "run.dir": run_dir,
        "data.train": f"{data}/motion/train.csv",
        "data.val": f"{data}/motion/val.csv",
        "data.crop_size": 32,
        "data.frames_per_clip": 8,
        "data.frame_step": 2,
        "data.num_workers": 0,
        "model.name": "vit_pico",
        "model.patch_size": 8,
        "finetune.heads": 2,
        "train.batch_size": 4,
        "train.epochs": None,
        "train.warmup_epochs": None,
        "train.steps": 6,
        "train.warmup_steps": 2,
        "train.lr": 1e-3,
        "train.log_every": 2,
        "train.checkpoint_every": 2,
        "train.precision": "fp32",
        "eval.num_segments": 2,
        "eval.num_crops": 2,
        "eval.batch_size": 4,
    }
    settings.update(extra)
    return load_config(
        "finetune/vjepa_k400",
        [(k, str(v) if k == "run.dir" else v) for k, v in settings.items()],
        schema=FinetuneConfig,
    )


def make_trainer(cfg):
    from videojepa.data.build import build_dataset
    from videojepa.finetune.model import Classification
    from videojepa.finetune.runner import FinetuneTrainer, finetune_encoder, label_count, resolve_protocol

    encoder, _ = finetune_encoder(cfg)
    resolve_protocol(cfg, encoder)
    count, classes = label_count(
        cfg, build_dataset(cfg.data.train, cfg.data, True), build_dataset(cfg.data.val, cfg.data, False)
    )
    torch.manual_seed(cfg.run.seed)
    return FinetuneTrainer(cfg, Classification(cfg, encoder, count, classes))


def losses(run_dir):
    return [r["loss"] for r in read_metrics(run_dir, kind="step")]


# ------------------------------------------------------------------ config
def test_config_rules_name_the_key(tiny_synth, tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"^data.num_views: 3: fine-tuning trains on one clip and one view per "
        r"video \(allowed: 1\); set the test views with eval.num_segments",
    ):
        tiny(tiny_synth, tmp_path, **{"data.num_views": 3})
    both = tiny(tiny_synth, tmp_path, **{"train.epochs": 2})  # steps 6 given too: checked once the data is known
    with pytest.raises(
        ConfigError,
        match=r"^train.steps: 6 contradicts train.epochs=2 \(3 steps of 4 for 6 videos\); "
        r"give one of them$",
    ):
        both.resolve_epochs(6)
    agreeing = tiny(tiny_synth, tmp_path, **{"train.epochs": 4})
    agreeing.resolve_epochs(6)  # a saved config.yaml: both keys, consistent
    assert agreeing.train.steps == 6
    with pytest.raises(ConfigError, match=r"^finetune.head: got 'mlp'; allowed values: 'attentive' or 'linear'$"):
        tiny(tiny_synth, tmp_path, **{"finetune.head": "mlp"})
    cfg = load_config("finetune/vjepa_k400", schema=FinetuneConfig)
    cfg.resolve_epochs(1000)  # 35 epochs of 1000 videos at 64 per step
    assert (cfg.train.steps, cfg.train.warmup_steps) == (math_ceil(35 * 1000 / 64), math_ceil(5 * 1000 / 64))
    ssv2 = load_config("finetune/vjepa_ssv2", schema=FinetuneConfig)
    assert (
        ssv2.data.frames_per_clip,
        ssv2.train.lr,
        ssv2.eval.num_segments,
        ssv2.finetune.layer_decay,
        ssv2.model.drop_path,
        ssv2.augment.mixup,
    ) == (32, 1e-4, 2, 0.8, 0.2, 0.8)


def math_ceil(x):
    import math

    return math.ceil(x)


# ------------------------------------------------------------------ multi-view test
def test_multiview_logits_average_exactly_segments_times_crops_views():
    calls = []

    def classify(clips):
        calls.append(clips.shape[0])
        return torch.stack([clips.mean(dim=(1, 2, 3, 4)), -clips.amax(dim=(1, 2, 3, 4))], dim=1)

    video = torch.randn(3, 6, 3, 2, 4, 4)  # 3 videos x (2 segments x 3 crops)
    out = multiview_logits(classify, video)
    assert calls == [18] and out.shape == (3, 2)
    expected = torch.stack([classify(video[:, s]) for s in range(6)]).mean(0)
    assert torch.allclose(out, expected)
    assert not torch.allclose(out, classify(video[:, 0]))  # negative control: one view is not the average


def test_evaluate_feeds_every_view_of_every_video(tiny_synth):
    from videojepa.data.build import build_dataset
    from videojepa.data.config import DataConfig

    data = DataConfig(frames_per_clip=8, frame_step=2, crop_size=32, num_workers=0, num_clips=2, num_views=3)
    dataset = build_dataset(f"{tiny_synth}/motion/val.csv", data, train=False, on_bad="exclude")
    seen = []

    def classify(clips):
        seen.append(clips.shape[0])
        return torch.nn.functional.one_hot(torch.zeros(clips.shape[0], dtype=torch.long), 4).float()

    scores = evaluate(classify, dataset, batch_size=3, num_classes=4)
    assert sum(seen) == len(dataset) * 6 and scores["num_val"] == len(dataset)
    labels = [e.label for e in dataset.entries]
    assert scores["top1"] == pytest.approx(labels.count(0) / len(labels))
    assert scores["confusion"][0][0] == labels.count(0) and sum(map(sum, scores["confusion"])) == len(labels)


# ------------------------------------------------------------------ training data
def test_repeated_augmentation_gives_distinct_reproducible_clips(tiny_synth, tmp_path):
    cfg = tiny(tiny_synth, tmp_path)
    trainer = make_trainer(cfg)
    dataset, collate = trainer.method.training_data(cfg)
    item = dataset[(3, 0, 1)]
    assert item["video"].shape == (2, 3, 8, 32, 32) and item["label"].tolist() == [item["label"][0]] * 2
    assert not torch.equal(item["video"][0], item["video"][1])  # own crop, flip, RandAugment, erasing
    assert torch.equal(dataset[(3, 0, 1)]["video"], item["video"])  # a function of the key
    assert not torch.equal(dataset[(3, 0, 2)]["video"], item["video"])  # another epoch, other clips
    batch = collate([dataset[(i, 0, 0)] for i in range(4)])
    assert batch["video"].shape == (8, 3, 8, 32, 32) and batch["target"].shape == (8, 4)
    assert torch.allclose(batch["target"].sum(1), torch.ones(8))
    again = collate([dataset[(i, 0, 0)] for i in range(4)])
    assert torch.equal(batch["video"], again["video"]) and torch.equal(batch["target"], again["target"])


# ------------------------------------------------------------------ resume, frozen encoder
def interrupt_during_step(trainer, at_call: int) -> None:
    forward, calls = trainer.method.forward, [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at_call:
            os.kill(os.getpid(), signal.SIGTERM)
        return forward(*args, **kwargs)

    trainer.method.forward = wrapped


def test_killed_finetuning_resumes_to_identical_losses(tiny_synth, tmp_path, one_thread):
    extra = {"train.steps": 6, "train.checkpoint_every": 2}
    make_trainer(tiny(tiny_synth, tmp_path / "a", **extra)).fit()
    interrupted = make_trainer(tiny(tiny_synth, tmp_path / "b", **extra))
    interrupt_during_step(interrupted, at_call=3)
    interrupted.fit()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "b")][-1] == "step_00000003"
    assert len(losses(tmp_path / "b")) == 3
    make_trainer(tiny(tiny_synth, tmp_path / "b", **extra)).fit()  # resumes at step 3
    a, b = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert len(a) == 6 and a == b
    sa, sb = ckpt.load_latest(tmp_path / "a"), ckpt.load_latest(tmp_path / "b")
    assert sa["step"] == sb["step"] == 6
    assert all(torch.equal(sa["method"][k], sb["method"][k]) for k in sa["method"])
    # the scores at checkpoints 2, 4, 6 of both runs agree too (b also scored at 3, its interruption)
    val = lambda d: {r["step"]: r["val_top1"] for r in read_metrics(d, kind="val")}  # noqa: E731
    assert val(tmp_path / "a") == {s: v for s, v in val(tmp_path / "b").items() if s != 3}


def test_frozen_encoder_stays_bitwise_unchanged(tiny_synth, tmp_path, one_thread):
    frozen = make_trainer(tiny(tiny_synth, tmp_path / "f", **{"finetune.freeze_encoder": True, "train.steps": 3}))
    before = {k: v.clone() for k, v in frozen.method.encoder.state_dict().items()}
    head_before = {k: v.clone() for k, v in frozen.method.head.state_dict().items()}
    frozen.fit()
    assert all(torch.equal(before[k], v) for k, v in frozen.method.encoder.state_dict().items())
    assert not all(torch.equal(head_before[k], v) for k, v in frozen.method.head.state_dict().items())
    # negative control: end to end, the encoder moves
    trained = make_trainer(tiny(tiny_synth, tmp_path / "t", **{"train.steps": 3}))
    before = {k: v.clone() for k, v in trained.method.encoder.state_dict().items()}
    trained.fit()
    assert not all(torch.equal(before[k], v) for k, v in trained.method.encoder.state_dict().items())


def test_layer_decay_reaches_the_optimizer(tiny_synth, tmp_path):
    trainer = make_trainer(tiny(tiny_synth, tmp_path))
    from videojepa.optim.adamw import set_hyperparameters

    set_hyperparameters(trainer.optimizer, 1.0, 0.05)
    lrs = {}
    for group in trainer.optimizer.param_groups:
        for p in group["params"]:
            lrs[id(p)] = group["lr"]
    m = trainer.method
    assert lrs[id(m.encoder.patch_embed.weight)] == pytest.approx(0.8**3)  # vit_pico: depth 2
    assert lrs[id(m.encoder.blocks[0].mlp.fc1.weight)] == pytest.approx(0.8**2)
    assert lrs[id(m.encoder.blocks[1].mlp.fc1.weight)] == pytest.approx(0.8)
    assert lrs[id(m.head.probe.head[1].weight)] == 1.0
    assert len(lrs) == sum(1 for _ in m.parameters())


# ------------------------------------------------------------------ the command and its outputs
def test_finetune_command_writes_results_and_loadable_classifiers(cli, tiny_synth, tmp_path):
    from videojepa.encoder_io import load_encoder
    from videojepa.finetune import load_classifier

    run = tmp_path / "run"
    args = [
        f"{k}={v}"
        for k, v in {
            "run.dir": run,
            "data.train": f"{tiny_synth}/motion/train.csv",
            "data.val": f"{tiny_synth}/motion/val.csv",
            "data.crop_size": 32,
            "data.frames_per_clip": 8,
            "data.frame_step": 2,
            "data.num_workers": 0,
            "model.name": "vit_pico",
            "model.patch_size": 8,
            "finetune.head": "attentive",
            "finetune.heads": 2,
            "train.batch_size": 4,
            "train.epochs": 1,
            "train.warmup_epochs": 0.5,
            "train.checkpoint_every": 1,
            "train.precision": "fp32",
            "eval.num_segments": 2,
            "eval.num_crops": 3,
        }.items()
    ]
    code, out, err = cli("finetune", "finetune/vjepa_k400", *args)
    assert code == 0, err
    results = json.loads((run / "results.json").read_text())
    assert results["schema"] == "videojepa.finetune/1" and results["steps"] == 3  # ceil(1 epoch x 12 / 4)
    assert set(results["checkpoints"]) == {"best", "last"}
    for entry in results["checkpoints"].values():
        assert set(entry["protocols"]) == {"1x1", "2x3"}
        for s in entry["protocols"].values():
            assert 0 <= s["top1"] <= 1 and s["top5"] is None and s["num_val"] == 4
            assert np.array(s["confusion"]).sum() == 4
    assert "| best |" in (run / "results.md").read_text() and "Confusion matrix" in out
    best_step = results["checkpoints"]["best"]["step"]
    scored = {r["step"]: r["val_top1"] for r in read_metrics(run, kind="val")}
    assert scored[best_step] == max(scored.values())
    assert results["checkpoints"]["best"]["protocols"]["1x1"]["top1"] == pytest.approx(scored[best_step])
    # the folder is an encoder for probe / extract, and a classifier that names labels
    encoder = load_encoder(run / "last")
    assert encoder.card.method == "finetune" and encoder.card.clip.frames == 8
    classifier = load_classifier(run / "last")
    assert classifier.classes == results["classes"] and classifier.info["step"] == 3
    video = torch.randn(2, 3, 8, 32, 32)
    assert all(name in classifier.classes for name in classifier.predict(video))
    state = ckpt.load_latest(run)["method"]
    assert all(torch.equal(state[f"encoder.{k}"], v) for k, v in encoder.state_dict().items())
    # running again on the finished run resumes nothing and tests again
    code, out, err = cli("finetune", "finetune/vjepa_k400", *args)
    scores = lambda r: {
        (name, key): {k: v for k, v in s.items() if k != "seconds"}  # noqa: E731
        for name, e in r["checkpoints"].items()
        for key, s in e["protocols"].items()
    }
    assert code == 0 and scores(json.loads((run / "results.json").read_text())) == scores(results)
    code, out, err = cli("finetune", run / "config.yaml")  # the saved config (epochs and the steps they made)
    assert code == 0, err


def test_finetune_command_bad_input_is_one_line(cli, tiny_synth, tmp_path):
    code, out, err = cli(
        "finetune", "finetune/vjepa_k400", f"run.dir={tmp_path / 'r'}", f"data.train={tiny_synth}/motion/train.csv"
    )
    assert code == 2 and err.strip() == (
        "videojepa finetune: error: data.val: is not set: fine-tuning scores its "
        "checkpoints on labelled validation videos (a CSV file or a class-per-folder "
        "tree)"
    )
    assert not (tmp_path / "r").exists()
    code, out, err = cli(
        "finetune",
        "finetune/vjepa_k400",
        f"run.dir={tmp_path / 'r'}",
        "finetune.heads=7",
        "finetune.head=attentive",
        f"data.train={tiny_synth}/motion/train.csv",
        f"data.val={tiny_synth}/motion/val.csv",
        "model.name=vit_pico",
        "model.patch_size=8",
        "data.crop_size=32",
        "data.frames_per_clip=8",
    )
    assert code == 2 and "finetune.heads: 7 does not divide the encoder width 64; allowed: 1, 2, 4, 8, 16" in err


@pytest.fixture(scope="module")
def torchrun_finetuned(tiny_synth, tmp_path_factory):
    """`videojepa finetune` under torchrun with DDP and with FSDP2, both in one launch of 2 ranks (a launch costs
    seconds of start-up on a small CPU): tests/distributed_steps.py's `jobs` runs what the command runs."""
    import subprocess
    from pathlib import Path

    from videojepa.config import save_config

    root = tmp_path_factory.mktemp("torchrun_finetune")
    jobs = []
    for parallel in ("ddp", "fsdp2"):
        cfg = tiny(
            tiny_synth,
            root / parallel,
            **{"train.steps": 3, "train.checkpoint_every": 2, "train.parallel": parallel, "finetune.head": "attentive"},
        )
        save_config(cfg, root / f"{parallel}.yaml")
        jobs.append(f"finetune={root / f'{parallel}.yaml'}")
    script = Path(__file__).parent / "distributed_steps.py"
    proc = subprocess.run([*TORCHRUN_2, str(script), "jobs", *jobs], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
def test_torchrun_two_processes_finetune(torchrun_finetuned, parallel):
    from videojepa.finetune import load_classifier

    run = torchrun_finetuned / parallel
    assert [r["step"] for r in read_metrics(run, kind="step")] == [1, 2, 3]  # rank 0 writes
    results = json.loads((run / "results.json").read_text())
    assert results["steps"] == 3 and results["checkpoints"]["last"]["step"] == 3
    # the classifier written at the end holds the whole weights (gathered from the shards under FSDP2)
    state = ckpt.load_latest(run)["method"]
    classifier = load_classifier(run / "last")
    assert all(torch.equal(v, state[f"encoder.{k}"]) for k, v in classifier.encoder.state_dict().items())
    assert all(torch.equal(v, state[f"head.{k}"]) for k, v in classifier.head.state_dict().items())
