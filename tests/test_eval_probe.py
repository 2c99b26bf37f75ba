"""`videojepa probe` end to end on synthetic videos and an image folder, with a random-init tiny encoder."""

import json
import math

import numpy as np
import pytest
import torch
import yaml

from videojepa.data.datasets import BadInputWarning
from videojepa.data.synth import DEFAULT_MOTIONS
from videojepa.eval.report import SCHEMA, TASK_KEYS, TOP_KEYS, check_results

# 4-frame 32x32 clips, patch 8: 2 x 4 x 4 = 32 tokens of width 96 (vit_nano)
TINY = [
    "model.name=vit_nano",
    "model.patch_size=8",
    "data.crop_size=32",
    "data.frames_per_clip=4",
    "data.frame_step=4",
    "data.num_workers=0",
    "features.batch_size=32",
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """600 synthetic videos (450 train / 150 val), 16 frames of 32x32, plus 60-video subsets of each task."""
    from videojepa.data.synth import write_dataset

    root = tmp_path_factory.mktemp("synth")
    write_dataset(str(root), num_videos=600, frames=16, size=32, seed=0, workers=1)
    for task in ("motion", "appearance"):
        for split, n in (("train", 40), ("val", 20)):
            lines = (root / task / f"{split}.csv").read_text().splitlines()[:n]
            (root / task / f"small_{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def probe(cli, run_dir, *overrides, config="demo/probe"):
    code, out, err = cli("probe", config, f"run.dir={run_dir}", *overrides, "--quiet")
    assert code == 0, err
    return json.loads((run_dir / "results.json").read_text()), out


def test_random_init_attentive_probe_beats_chance_on_appearance(synth, tmp_path, cli):
    results, out = probe(
        cli,
        tmp_path,
        "tasks=[]",
        f"data.train={synth}/appearance/train.csv",
        f"data.val={synth}/appearance/val.csv",
        *TINY,
        "optim.epochs=15",
        "optim.lr=[1e-2,3e-3]",
    )
    check_results(results)
    task = results["tasks"][0]
    assert results["schema"] == SCHEMA and set(TOP_KEYS) <= set(results) and set(TASK_KEYS) <= set(task)
    assert (
        task["name"] == "appearance" and task["num_classes"] == 4 and (task["num_train"], task["num_val"]) == (450, 150)
    )
    assert results["encoder"]["random_init"] and results["probe"]["kind"] == "attentive"
    assert results["probe"]["heads"] == 12 and task["chance"] == 0.25 and task["top5"] is None
    assert task["cells"][0].keys() >= {"lr", "weight_decay", "top1", "val_loss", "train_loss"}
    sigma = math.sqrt(0.25 * 0.75 / 150)  # standard deviation of a guesser's score on 150 videos
    assert task["top1"] > 0.25 + 3 * sigma, task  # the best of the two cells, as reported
    assert sum(c["top1"] for c in task["cells"]) / 2 > 0.25 + 2 * sigma, task  # and not by selection alone
    # the best cell's confusion matrix: rows are the true classes, its diagonal is the reported top-1
    confusion = np.array(task["confusion"])
    assert task["classes"] == (synth / "appearance/classes.txt").read_text().split()
    assert confusion.shape == (4, 4) and confusion.sum() == 150
    assert confusion.trace() / 150 == pytest.approx(task["top1"])
    assert (
        confusion.sum(1).tolist()
        == np.bincount(
            [int(r.split()[1]) for r in (synth / "appearance/val.csv").read_text().split("\n") if r], minlength=4
        ).tolist()
    )
    table = (tmp_path / "results.md").read_text()
    assert f"Per-class top-1 for appearance (best cell, validation; %): {task['classes'][0]} " in table
    assert f"| appearance | {100 * task['top1']:.1f} | 25.0 | attentive |" in table and table in out
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["data"]["train"].endswith("appearance/train.csv")


def test_two_tasks_multi_clip_multi_view_grid_and_cache(synth, tmp_path, cli):
    config = tmp_path / "probe.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "base": "demo/probe",
                "probe": {"kind": "linear"},
                "data": {"num_clips": 2, "num_views": 3, "eval_resize_ratio": 1.25},
                "tasks": [
                    {
                        "name": task,
                        "train": f"{synth}/{task}/small_train.csv",
                        "val": f"{synth}/{task}/small_val.csv",
                        **({"data": {"frames_per_clip": 8, "frame_step": 1}} if task == "motion" else {}),
                    }
                    for task in ("motion", "appearance")
                ],
                "optim": {"epochs": 3, "lr": [1e-2, 1e-3], "weight_decay": [0.0, 0.1]},
            }
        )
    )
    run = tmp_path / "run"
    results, _ = probe(cli, run, *TINY, config=config)
    motion, appearance = results["tasks"]
    assert (motion["name"], motion["num_classes"], appearance["num_classes"]) == ("motion", len(DEFAULT_MOTIONS), 4)
    assert motion["protocol"]["frames_per_clip"] == 8 and appearance["protocol"]["frames_per_clip"] == 4
    assert motion["protocol"]["num_clips"] == 2 and motion["protocol"]["num_views"] == 3
    assert len(motion["cells"]) == 4 and motion["top5"] is None  # top-5 only above 5 classes
    best = max(motion["cells"], key=lambda c: (c["top1"], -c["val_loss"]))
    assert motion["top1"] == best["top1"] and motion["best"] == {k: best[k] for k in ("lr", "weight_decay")}
    cache = sorted(p.name.split("-")[0] for p in (run / "features").glob("*.safetensors"))
    assert cache == ["train", "train", "val", "val"]  # the tasks' protocols differ: no sharing
    from safetensors.torch import load_file

    cached = load_file(str(next((run / "features").glob("val-*"))))
    assert cached["features"].shape == (1, 20, 2 * 3, 96)  # pass, videos, clips x views, pooled width
    # every cell of the grid scores exactly as that cell trained alone (same seed), features from the cache
    for cell in (motion["cells"][1], motion["cells"][2]):
        alone, _ = probe(
            cli,
            tmp_path / "alone",
            *TINY,
            f"optim.lr={cell['lr']}",
            f"optim.weight_decay={cell['weight_decay']}",
            f"features.dir={run}/features",
            config=config,
        )
        assert alone["tasks"][0]["cached"] == {"train": True, "val": True}
        assert alone["tasks"][0]["cells"][0]["top1"] == cell["top1"]
        assert alone["tasks"][0]["cells"][0]["val_loss"] == pytest.approx(cell["val_loss"], abs=1e-6)


def test_tasks_labelling_the_same_videos_share_the_feature_cache(synth, tmp_path, cli):
    tasks = [
        {"name": t, "train": f"{synth}/{t}/small_train.csv", "val": f"{synth}/{t}/small_val.csv"}
        for t in ("motion", "appearance")
    ]
    results, _ = probe(cli, tmp_path, f"tasks={json.dumps(tasks)}", *TINY, "probe.kind=linear", "optim.epochs=1")
    motion, appearance = results["tasks"]
    assert motion["cached"] == {"train": False, "val": False} and appearance["cached"] == {"train": True, "val": True}
    assert (motion["num_classes"], appearance["num_classes"]) == (
        len(DEFAULT_MOTIONS),
        4,
    )  # same features, each task's labels
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 2


def test_augmented_training_cached_or_on_the_fly(synth, tmp_path, cli):
    task = [f"data.train={synth}/appearance/small_train.csv", f"data.val={synth}/appearance/small_val.csv", "tasks=[]"]
    cached, _ = probe(cli, tmp_path / "a", *task, *TINY, "features.augmentations=2", "optim.epochs=2")
    live, _ = probe(
        cli,
        tmp_path / "b",
        *task,
        *TINY,
        "features.cache=false",
        "optim.epochs=2",
        "probe.kind=attentive3",
        "probe.precision=bf16",
    )
    from safetensors.torch import load_file

    train = load_file(str(next((tmp_path / "a/features").glob("train-*"))))["features"]
    assert train.shape == (2, 40, 1, 32, 96) and not torch.equal(train[0], train[1])  # two augmented copies
    assert not (tmp_path / "b/features").exists()  # nothing cached without features.cache
    assert live["probe"]["kind"] == "attentive3" and 0 <= live["tasks"][0]["top1"] <= 1


def _write_images(root, rng, n):
    from PIL import Image

    for label, (lo, hi) in {"dark": (0, 90), "bright": (160, 255)}.items():
        (root / label).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(lo, hi, size=(40, 36, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")


@pytest.mark.parametrize("kind", ["linear", "knn"])
def test_image_folder_evaluates_end_to_end(tmp_path, cli, kind):
    from videojepa.encoder_io import save_encoder
    from videojepa.models import create_model

    rng = np.random.default_rng(0)
    _write_images(tmp_path / "light/train", rng, 12)
    _write_images(tmp_path / "light/val", rng, 6)
    torch.manual_seed(1)
    save_encoder(create_model("vit_nano", patch_size=8), tmp_path / "pretrain/encoder.safetensors")
    checkpoint = f"probe.checkpoint={tmp_path}/pretrain" if kind == "linear" else "probe.checkpoint=none"
    results, out = probe(
        cli,
        tmp_path / "run",
        "tasks=[]",
        f"data.train={tmp_path}/light/train",
        f"data.val={tmp_path}/light/val",
        checkpoint,
        *TINY,
        f"probe.kind={kind}",
        "probe.knn_k=5",
        "optim.epochs=15",
        "optim.lr=1e-2",
    )
    task = results["tasks"][0]
    assert (task["name"], task["num_classes"], task["num_train"], task["num_val"]) == ("light", 2, 24, 12)
    assert task["top1"] == 1.0  # brightness is easy even for random features
    assert task["confusion"] == [[6, 0], [0, 6]] and len(task["classes"]) == 2
    assert results["encoder"]["random_init"] == (kind == "knn") and results["encoder"]["embed_dim"] == 96
    if kind == "knn":
        assert task["best"] == {"k": 5, "temperature": 0.07} and "optim" not in results


def test_probe_config_and_data_errors_are_one_line(synth, tmp_path, cli):
    base = ["probe", "demo/probe", f"run.dir={tmp_path}"]
    code, _, err = cli(*base, "optim.lrr=1")
    assert code == 2 and "unknown key 'optim.lrr'; did you mean 'optim.lr'?" in err and err.count("\n") == 1
    code, _, err = cli(*base, f"data.train={synth}/appearance/train.csv")
    assert code == 2 and "tasks=[]" in err
    code, _, err = cli(
        *base,
        "tasks=[]",
        f"data.train={synth}/appearance/small_train.csv",
        f"data.val={synth}/appearance/small_val.csv",
        *TINY,
        "probe.heads=7",
    )
    assert code == 2 and "probe.heads=7 does not divide the feature width 96" in err
    code, _, err = cli(
        *base,
        "tasks=[]",
        f"data.train={synth}/appearance/small_train.csv",
        f"data.val={synth}/appearance/small_val.csv",
        *TINY,
        "data.crop_size=36",
    )
    assert code == 2 and "data.crop_size=36 (task small) is not divisible by the encoder's patch size 8" in err
    code, _, err = cli(*base, "tasks=[]", f"data.train={tmp_path}/missing.csv", f"data.val={tmp_path}/missing.csv")
    assert code == 2 and "data source not found" in err
    if not torch.cuda.is_available():
        code, _, err = cli(
            *base,
            "tasks=[]",
            f"data.train={synth}/appearance/small_train.csv",
            f"data.val={synth}/appearance/small_val.csv",
            *TINY,
            "run.device=cuda",
        )
        assert code == 2 and "run.device=cuda but this machine has no CUDA device" in err
    code, _, err = cli(
        *base,
        "tasks=[]",
        f"data.train={synth}/appearance/small_train.csv",
        f"data.val={synth}/appearance/small_val.csv",
        *TINY,
        "run.device=gpu0",
    )
    assert code == 2 and "run.device='gpu0' is not a torch device" in err


def test_an_unreadable_validation_file_is_excluded_and_reported_never_substituted(synth, tmp_path, cli):
    (tmp_path / "broken.mp4").write_text("not a video\n")
    val = (synth / "appearance/small_val.csv").read_text().splitlines()  # 20 videos, paths relative to synth
    (tmp_path / "val.csv").write_text(
        "".join(f"{synth / 'appearance' / line.split()[0]} {line.split()[1]}\n" for line in val[:10])
        + "broken.mp4 0\n"
        + "".join(f"{synth / 'appearance' / line.split()[0]} {line.split()[1]}\n" for line in val[10:])
    )
    args = [
        "tasks=[]",
        f"data.train={synth}/appearance/small_train.csv",
        f"data.val={tmp_path / 'val.csv'}",
        *TINY,
        "probe.kind=linear",
        "optim.epochs=2",
        "data.max_bad_fraction=0.1",
    ]
    with pytest.warns(BadInputWarning, match="broken.mp4: not a readable media file"):
        extracted, out = probe(cli, tmp_path / "run", *args)
    cached, _ = probe(cli, tmp_path / "run", *args)  # the same run again: validation features from the cache
    for results, from_cache in ((extracted, False), (cached, True)):
        task = results["tasks"][0]
        assert task["cached"]["val"] == from_cache
        assert task["val_excluded"] == [str(tmp_path / "broken.mp4")] and task["bad_files"]["val"] == 1
        assert task["num_val"] == 20 and np.array(task["confusion"]).sum() == 20  # the 20 readable videos, once each
    assert "1 unreadable validation file(s) excluded from the score: " + str(tmp_path / "broken.mp4") in out


def test_clip_keys_left_unset_come_from_the_encoder_card():
    from videojepa.config import load_config
    from videojepa.encoder_io import ClipProtocol, EncoderCard
    from videojepa.eval.config import ProbeConfig
    from videojepa.eval.encoders import encoder_protocol

    card = EncoderCard(
        arch={"embed_dim": 64}, clip=ClipProtocol(frames=8, frame_step=2, crop=32, mean=(0.5,) * 3, std=(0.25,) * 3)
    )
    cfg = load_config(
        {"probe": {"checkpoint": "x"}, "data": {"train": "a.csv", "val": "b.csv", "crop_size": 64}}, schema=ProbeConfig
    )
    data = cfg.task_list()[0][1]
    given = cfg.given_keys()
    out, taken = encoder_protocol(data, card, lambda key: f"data.{key}" in given)
    assert (out.frames_per_clip, out.frame_step, out.fps, out.crop_size) == (8, 2, None, 64)  # crop was given
    assert (
        out.mean == (0.5,) * 3
        and out.std == (0.25,) * 3
        and set(taken) == {"frames_per_clip", "frame_step", "fps", "mean", "std"}
    )
    cfg = load_config(
        {"probe": {"checkpoint": "x"}, "data": {"train": "a.csv", "val": "b.csv"}}, ["data.fps=10"], schema=ProbeConfig
    )
    out, taken = encoder_protocol(cfg.task_list()[0][1], card, lambda key: f"data.{key}" in cfg.given_keys())
    assert (out.fps, out.frame_step, out.crop_size) == (10, 4, 32) and "frame_step" not in taken  # fps set: both kept
    assert encoder_protocol(data, None, lambda key: False) == (data, {})  # a random-init encoder has no card


def test_probe_configs_refuse_pretraining_only_keys(cli):
    code, _, err = cli("probe", "demo/probe", "tasks=[]", "data.train=[{path: a.csv, weight: 2}]", "data.val=b.csv")
    assert code == 2 and err.strip() == (
        "videojepa probe: error: data.train: a weighted mixture of sources is a "
        "pretraining setting: a probe trains on one CSV list or folder"
    )
    code, _, err = cli("probe", "demo/probe", "model.init=runs/x")
    assert code == 2 and "model.init: is a pretraining key: a probe reads its encoder from probe.checkpoint" in err
