"""Probes trained at scale: training clips streamed through the frozen encoder with fresh augmented views every
epoch (no token cache), the same result as the cached path when nothing is augmented, a token cache too large
refused before any work, and the test views of the official evaluation code (softmax averaged over views)."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
import torch
import yaml

from videojepa.data.config import DataConfig
from videojepa.eval import classification
from videojepa.eval.protocol import eval_logits, with_test_views

pytestmark = pytest.mark.usefixtures("one_thread")


def probe_run(cli, run_dir, pico, data, *overrides):
    """`videojepa probe` of the pico encoder on the tiny motion task: 2 cells, 2 epochs (the official test views)."""
    config = run_dir.parent / f"{run_dir.name}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "probe": {"checkpoint": str(pico), "precision": "fp32"},
                "data": {
                    "train": f"{data}/motion/train.csv",
                    "val": f"{data}/motion/val.csv",
                    "frame_step": 2,
                    "num_workers": 0,
                },
                "features": {"batch_size": 3},  # training batches of 4 are encoded in chunks of 3 and 1
                "optim": {"epochs": 2, "batch_size": 4, "lr": [3e-3, 1e-3]},
            }
        )
    )
    code, _, err = cli("probe", config, f"run.dir={run_dir}", *overrides, "--quiet")
    assert code == 0, err
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture
def training_clips(monkeypatch):
    """The training clips the streamed path feeds the encoder: {video index: [its clip at epoch 0, 1, ...]}."""
    seen = defaultdict(list)
    encode_batches = classification.encode_batches

    def spy(encoder, loader, layers, precision, pooling, desc="", **kw):
        def batches():
            for batch in loader:
                if "epoch" in desc:  # the training batches, not the streamed validation
                    for i, video in zip(batch["index"].tolist(), batch["video"]):
                        seen[i].append(video.clone())
                yield batch

        return encode_batches(encoder, batches(), layers, precision, pooling, desc, **kw)

    monkeypatch.setattr(classification, "encode_batches", spy)
    return seen


def test_streamed_probe_training_sees_fresh_augmented_views_and_equals_the_cache_without_them(
    pico, tiny_synth, tmp_path, cli, training_clips
):
    cached = probe_run(cli, tmp_path / "cached", pico, tiny_synth, "features.cache=true")
    assert not training_clips  # the cached path encodes its training clips once, outside any epoch
    assert (tmp_path / "cached" / "features").is_dir()

    # streamed, nothing augmented: the evaluation clips every epoch, the cached run's result
    plain = probe_run(cli, tmp_path / "plain", pico, tiny_synth, "features.cache=false", "augment.random_clips=false")
    assert len(training_clips) == 12 and all(len(clips) == 2 for clips in training_clips.values())
    assert all(torch.equal(a, b) for a, b in training_clips.values())  # negative control: the same clip twice
    assert not (tmp_path / "plain" / "features").exists()  # nothing stored, validation streamed too
    for a, b in zip(cached["tasks"][0]["cells"], plain["tasks"][0]["cells"]):
        assert b["top1"] == a["top1"]
        # the same batches in the same order; only the encoder's batch composition differs (float rounding)
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
    assert plain["tasks"][0]["protocol"]["training"] == "streamed: evaluation clips, encoded every epoch"

    # streamed with random clips, RandAugment and erasing: every video looks different in each epoch
    training_clips.clear()
    fresh = probe_run(
        cli,
        tmp_path / "fresh",
        pico,
        tiny_synth,
        "features.cache=false",
        "augment.randaugment_n=2",
        "augment.erase_prob=0.5",
    )
    assert len(training_clips) == 12 and all(len(clips) == 2 for clips in training_clips.values())
    assert not any(torch.equal(a, b) for a, b in training_clips.values())
    task = fresh["tasks"][0]
    assert (
        task["protocol"]["training"]
        == "streamed: random clips (crop, flip) + RandAugment n2 m7 + erasing p0.5, fresh every epoch"
    )
    assert fresh["augment"]["randaugment_n"] == 2
    # and the probes learned something else from them than from the fixed clips
    assert task["cells"][0]["train_loss"] != pytest.approx(cached["tasks"][0]["cells"][0]["train_loss"], rel=1e-3)


def test_augmented_items_are_a_function_of_video_seed_and_epoch(tiny_synth):
    """RandAugment and erasing of a streamed item: drawn from its key, so epochs differ and a rerun repeats."""
    from videojepa.data.augment import AugmentedDataset, ClipAugment
    from videojepa.data.build import build_dataset

    cfg = DataConfig(frames_per_clip=4, frame_step=2, crop_size=32, num_workers=0)
    base = build_dataset(f"{tiny_synth}/motion/train.csv", cfg, train=False)  # fixed clips: only the augment varies
    augmented = AugmentedDataset(base, ClipAugment(cfg.mean, cfg.std, randaugment_n=2, erase_prob=1.0))
    plain = base[(3, 0, 0)]["video"]
    epoch0, again, epoch1 = augmented[(3, 0, 0)]["video"], augmented[(3, 0, 0)]["video"], augmented[(3, 0, 1)]["video"]
    assert torch.equal(epoch0, again) and not torch.equal(epoch0, epoch1)
    assert not torch.equal(epoch0, plain) and epoch0.shape == plain.shape
    assert augmented.entries is base.entries and augmented.train  # the dataset's attributes, random items


def test_a_token_cache_too_large_is_refused_before_any_work(pico, tiny_synth, tmp_path, cli):
    # 12 + 4 videos x 8 clips x 3 views of 32 tokens x 64 channels x 4 bytes = 3.1 MB; the limit is 3 MB
    with pytest.raises(AssertionError, match="features.cache: task motion's features would take 3.1 MB"):
        probe_run(
            cli,
            tmp_path / "run",
            pico,
            tiny_synth,
            "data.num_clips=8",
            "data.num_views=3",
            "features.max_cache_gb=0.003",
        )
    code, _, err = cli(
        "probe",
        tmp_path / "run.yaml",
        f"run.dir={tmp_path}/run",
        "data.num_clips=8",
        "data.num_views=3",
        "features.max_cache_gb=0.003",
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert (
        "(288 training + 96 validation clips x 32 tokens x 64 channels x fp32), more than features.max_cache_gb" in err
    )
    assert "stream the clips through the encoder instead: features.cache=false" in err
    assert not (tmp_path / "run" / "features").exists()  # refused before any feature was computed
    # streaming holds nothing, so the same limit lets it run
    probe_run(
        cli,
        tmp_path / "streamed",
        pico,
        tiny_synth,
        "data.num_clips=8",
        "data.num_views=3",
        "features.max_cache_gb=0.003",
        "features.cache=false",
        "optim.epochs=1",
    )


def test_test_views_follow_the_official_code_or_the_earlier_protocol():
    three, one = DataConfig(num_views=3, crop_size=32), DataConfig(num_views=1, crop_size=32)
    # the official evaluation transforms: several views span a short side equal to the crop, one view is the
    # centre crop of a short side of int(crop * 256 / 224)
    assert with_test_views(three, "official").eval_resize_ratio == 1.0
    assert with_test_views(one, "official").eval_resize_ratio == pytest.approx(256 / 224)
    assert with_test_views(three.model_copy(update={"eval_resize_ratio": 1.25}), "resized").eval_resize_ratio == 1.25

    # softmax averaged over the views (the official code), not logits: two views, three classes, where the two
    # rules disagree (mean probabilities 0.476 / 0.274 / 0.250; mean logits -0.5 / 2.5 / -0.5)
    logits = torch.tensor([[-5.0, 4.0, 4.0], [4.0, 1.0, -5.0]])

    def probe(x):
        return logits

    features = torch.zeros(1, 2, 5)  # one video, 1 clip x 2 views of pooled 5-wide features
    p = torch.stack([logits[0].softmax(-1), logits[1].softmax(-1)]).mean(0)
    assert torch.allclose(eval_logits(probe, features, 1, 2, "softmax")[0], p.log())
    assert eval_logits(probe, features, 1, 2, "softmax").argmax(-1).item() == 0
    assert eval_logits(probe, features, 1, 2, "logits").argmax(-1).item() == 1


def test_results_and_the_saved_probe_name_the_test_protocol(pico, tiny_synth, tmp_path, cli):
    from videojepa.classifiers import load_classifier

    results = probe_run(cli, tmp_path / "official", pico, tiny_synth, "data.num_views=3", "optim.epochs=1")
    protocol = results["tasks"][0]["protocol"]
    assert (protocol["test_views"], protocol["average"], protocol["eval_resize_ratio"]) == ("official", "softmax", 1.0)
    assert (
        "test (official): 3 views spanning the long side (short side = crop x 1), softmax averaged"
        in (tmp_path / "official" / "results.md").read_text()
    )
    saved = load_classifier(results["tasks"][0]["probe_file"]).protocol  # what `videojepa evaluate` reproduces
    assert (saved.num_views, saved.resize_ratio, saved.average) == (3, 1.0, "softmax")
    code, _, err = cli(
        "evaluate", results["tasks"][0]["probe_file"], "--data", f"{tiny_synth}/motion/val.csv",
        "--out", tmp_path / "eval", "--workers", "0", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    evaluated = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert evaluated["protocol"]["average"] == "softmax" and evaluated["protocol"]["eval_resize_ratio"] == 1.0
    assert evaluated["confusion"] == results["tasks"][0]["confusion"]  # the same predictions, video by video

    earlier = ["data.num_views=3", "optim.epochs=1", "probe.test_views=resized", "data.eval_resize_ratio=1.25"]
    resized = probe_run(cli, tmp_path / "resized", pico, tiny_synth, *earlier)
    protocol = resized["tasks"][0]["protocol"]
    assert (protocol["test_views"], protocol["average"], protocol["eval_resize_ratio"]) == ("resized", "logits", 1.25)
    saved = load_classifier(resized["tasks"][0]["probe_file"]).protocol
    assert (saved.resize_ratio, saved.average) == (1.25, "logits")
    code, _, err = cli("config", "demo/probe", "probe.test_views=official")
    assert code == 2 and "data.eval_resize_ratio: applies to probe.test_views=resized" in err
