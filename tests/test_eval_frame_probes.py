"""Probes that keep time: `linear_frames` / `knn_frames` read the order of frames that a mean cannot.

The task is order-only: every video is a smooth random texture whose brightness ramps across its frames;
class 0 plays the frames in the order they were made, class 1 plays the SAME frames backwards. Each frame is
shown for two frames, so every 2-frame tubelet is still and a tubelet's own content never reveals the order:
the set of tubelets of a video is the same both ways. A mean over tokens keeps no order (with RoPE a token's
values carry no absolute position), so the mean-pooled linear probe stays near chance; the per-time-step
features of `linear_frames` read the ramp's sign. A random-init encoder: what is read is the input's order,
kept by the encoder, not anything learned.
"""

import json
import math

import numpy as np
import pytest
import torch

from videojepa.data.synth import write_mp4
from videojepa.eval.features import pool_features

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "model.name=vit_nano",
    "model.patch_size=8",
    "data.crop_size=32",
    "data.frames_per_clip=8",
    "data.frame_step=1",
    "data.num_workers=0",
    "features.batch_size=32",
    "optim.epochs=40",
    "optim.lr=[1e-2,3e-3]",
    "optim.weight_decay=[0.0]",
]


def smooth_texture(rng, size: int) -> np.ndarray:
    coarse = rng.uniform(0, 1, (4, 4, 3))
    return np.kron(coarse, np.ones((size // 4, size // 4, 1)))


@pytest.fixture(scope="module")
def forwards_backwards(tmp_path_factory):
    """240 videos (160 train / 80 val) of 8 frames, 32x32: label 0 forwards, 1 the same frames backwards."""
    root = tmp_path_factory.mktemp("order")
    (root / "videos").mkdir()
    rng = np.random.default_rng(0)
    rows = {"train": [], "val": []}
    for i in range(120):
        texture = smooth_texture(rng, 32)
        start, rise = rng.uniform(0.1, 0.4), rng.uniform(0.3, 0.5)
        levels = start + rise * np.linspace(0, 1, 4)
        frames = np.repeat(np.stack([texture * g for g in levels]), 2, axis=0)  # each frame shown twice
        split = "train" if i < 80 else "val"
        for label, clip in ((0, frames), (1, frames[::-1])):
            name = f"{i:03d}_{label}.mp4"
            write_mp4(str(root / "videos" / name), (255 * clip.clip(0, 1)).astype(np.uint8))
            rows[split].append(f"../videos/{name} {label}")
    (root / "task").mkdir()
    for split, lines in rows.items():
        (root / "task" / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (root / "task" / "classes.txt").write_text("forwards\nbackwards\n")
    return root / "task"


def probe(cli, task, run_dir, *overrides):
    code, _, err = cli(
        "probe", "demo/probe", f"run.dir={run_dir}", "tasks=[]", f"data.train={task}/train.csv",
        f"data.val={task}/val.csv", *TINY, *overrides, "--quiet",
    )  # fmt: skip
    assert code == 0, err
    return json.loads((run_dir / "results.json").read_text())


def test_linear_frames_reads_the_order_of_frames_that_the_mean_pooled_probe_cannot(forwards_backwards, tmp_path, cli):
    sigma = math.sqrt(0.5 * 0.5 / 80)  # a guesser's standard deviation on 80 validation videos
    shared = f"features.dir={tmp_path / 'features'}"
    mean = probe(cli, forwards_backwards, tmp_path / "linear", "probe.kind=linear", shared)["tasks"][0]
    frames = probe(
        cli, forwards_backwards, tmp_path / "frames", "probe.kind=linear_frames", "probe.frame_grid=1", shared
    )
    knn = probe(cli, forwards_backwards, tmp_path / "knn", "probe.kind=knn_frames", "probe.frame_grid=2", shared)
    assert mean["chance"] == 0.5 and mean["num_val"] == 80
    # the negative control: the order is invisible to a mean over tokens, whichever cell is chosen
    assert mean["top1"] <= 0.5 + 0.10, mean["cells"]
    task = frames["tasks"][0]
    assert task["top1"] >= 0.5 + 6 * sigma, task["cells"]  # >= 84%: the order is read
    assert frames["probe"]["kind"] == "linear_frames" and frames["probe"]["input"] == "frames:1"
    assert knn["probe"]["input"] == "frames:2" and knn["tasks"][0]["cells"][0].keys() >= {"k", "top1"}


def test_pool_features_frames_keep_time_order_and_a_coarse_place():
    T, H, W, D = 2, 4, 4, 3
    tokens = torch.arange(T * H * W * D, dtype=torch.float32).reshape(1, T * H * W, D)
    grid = (T, H, W)
    assert pool_features(tokens, "none", grid) is tokens
    torch.testing.assert_close(pool_features(tokens, "mean", grid), tokens.mean(1))
    per_step = pool_features(tokens, "frames", grid)
    assert per_step.shape == (1, T * D)
    torch.testing.assert_close(per_step.view(T, D), tokens.view(T, H * W, D).mean(1))  # time order kept
    cells = pool_features(tokens, "frames:2", grid).view(T, D, 2, 2)
    quadrant = tokens.view(T, H, W, D)[1, 2:, :2].mean((0, 1))  # time step 1, bottom-left 2x2 block
    torch.testing.assert_close(cells[1, :, 1, 0], quadrant)
    reversed_in_time = tokens.view(T, H * W, D).flip(0).reshape(1, -1, D)
    assert torch.equal(pool_features(reversed_in_time, "mean", grid), pool_features(tokens, "mean", grid))
    assert not torch.equal(pool_features(reversed_in_time, "frames", grid), per_step)
    with pytest.raises(ValueError, match="frames:G"):
        pool_features(tokens, "frames:x", grid)
    with pytest.raises(ValueError, match="5x5 grid of a 4x4"):
        pool_features(tokens, "frames:5", grid)


def test_a_prefix_of_the_lists_is_cut_from_the_whole_lists_cached_tokens(forwards_backwards, tmp_path, cli):
    """features.train_videos / val_videos probe the first videos of each list; with the whole list's tokens
    cached (by an attentive probe of the same encoder) they are cut from them, not computed, and the scores
    equal those of a probe run on lists holding only those videos."""
    shared = f"features.dir={tmp_path / 'features'}"
    probe(cli, forwards_backwards, tmp_path / "attentive", "probe.kind=attentive", "optim.epochs=1", shared)
    before = sorted(p.name for p in (tmp_path / "features").iterdir())
    code, out, err = cli(
        "probe", "demo/probe", f"run.dir={tmp_path / 'cut'}", "tasks=[]", f"data.train={forwards_backwards}/train.csv",
        f"data.val={forwards_backwards}/val.csv", *TINY, "probe.kind=linear_frames", "features.train_videos=100",
        "features.val_videos=40", shared,
    )  # fmt: skip
    assert code == 0, err
    cut = json.loads((tmp_path / "cut" / "results.json").read_text())["tasks"][0]
    assert (cut["num_train"], cut["num_val"]) == (100, 40)
    assert "from the cached tokens of the whole list" in out
    assert len(list((tmp_path / "features").iterdir())) == len(before) + 2  # the pooled prefix features, cached
    for split, n in (("train", 100), ("val", 40)):
        lines = (forwards_backwards / f"{split}.csv").read_text().splitlines()[:n]
        (forwards_backwards / f"first_{split}.csv").write_text("\n".join(lines) + "\n")
    code, _, err = cli(
        "probe", "demo/probe", f"run.dir={tmp_path / 'prefix'}", "tasks=[]",
        f"data.train={forwards_backwards}/first_train.csv", f"data.val={forwards_backwards}/first_val.csv", *TINY,
        "probe.kind=linear_frames", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    prefix = json.loads((tmp_path / "prefix" / "results.json").read_text())["tasks"][0]
    assert prefix["top1"] == cut["top1"] and prefix["confusion"] == cut["confusion"]
    assert [c["train_loss"] for c in prefix["cells"]] == pytest.approx([c["train_loss"] for c in cut["cells"]])
