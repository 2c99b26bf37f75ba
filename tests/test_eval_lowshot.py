"""Low-shot probing: class-balanced splits (each class keeps ceil(fraction x n) >= 1 videos), different for every
split seed and the same for the same seed; a run over several splits reports mean +- std with the encoder's
features computed once."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from fractions import Fraction

import pytest
import yaml

from videojepa.eval.features import FeatureSource
from videojepa.eval.lowshot import balanced_subset, split_seed

pytestmark = pytest.mark.usefixtures("one_thread")

# classes of 10, 7, 1 and 100 videos, interleaved
SIZES = (10, 7, 1, 100)
LABELS = [c for i in range(100) for c, n in enumerate(SIZES) if i < n]


def expected_count(n: int, fraction: float) -> int:
    """ceil(fraction x n) in exact arithmetic, at least one."""
    return max(1, math.ceil(Fraction(str(fraction)) * n))


@pytest.mark.parametrize("fraction", [0.07, 0.5, 1.0])
def test_a_split_is_class_balanced(fraction):
    rows = balanced_subset(LABELS, fraction, seed=split_seed(0, 0))
    counts = Counter(LABELS[i] for i in rows)
    assert counts == {c: expected_count(n, fraction) for c, n in enumerate(SIZES)}
    assert rows == sorted(set(rows))  # no video twice
    if fraction == 0.07:  # 0.07 x 100 is 7.000000000000001 in floating point: a plain ceil would keep 8 videos
        assert math.ceil(0.07 * 100) == 8 and counts[3] == 7


def test_splits_differ_across_seeds_and_repeat_for_the_same_seed():
    splits = [balanced_subset(LABELS, 0.5, split_seed(0, k)) for k in range(3)]
    assert splits[0] != splits[1] and splits[1] != splits[2] and splits[0] != splits[2]
    assert balanced_subset(LABELS, 0.5, split_seed(0, 1)) == splits[1]  # the same seed, the same split
    assert balanced_subset(LABELS, 0.5, split_seed(1, 0)) != splits[0]  # another run seed, other splits
    assert split_seed(0, 1) != split_seed(1, 0)


def test_low_shot_probe_reports_mean_and_std_over_splits_from_one_feature_pass(tiny_synth, tmp_path, cli, monkeypatch):
    passes = []
    extract = FeatureSource.extract

    def counted(self, encoder, dataset, *args, **kw):
        passes.append(len(dataset))
        return extract(self, encoder, dataset, *args, **kw)

    monkeypatch.setattr(FeatureSource, "extract", counted)
    config = tmp_path / "lowshot.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"name": "vit_pico", "patch_size": 8},
                "probe": {"kind": "linear"},
                "data": {
                    "train": f"{tiny_synth}/motion/train.csv",
                    "val": f"{tiny_synth}/motion/val.csv",
                    "crop_size": 32,
                    "frames_per_clip": 4,
                    "frame_step": 2,
                    "num_workers": 0,
                },
                "features": {"train_fraction": 0.5, "splits": 3},
                "optim": {"epochs": 3, "lr": [1e-2, 1e-3]},
            }
        )
    )
    code, _, err = cli("probe", config, f"run.dir={tmp_path}/run", "--quiet")
    assert code == 0, err
    assert passes == [4, 12]  # validation and the whole training list, once each, for all three splits
    task = json.loads((tmp_path / "run" / "results.json").read_text())["tasks"][0]
    shot = task["low_shot"]
    labels = [int(line.split()[1]) for line in (tiny_synth / "motion" / "train.csv").read_text().splitlines()]
    kept = sum(expected_count(n, 0.5) for n in Counter(labels).values())
    assert shot["splits"] == 3 and len(set(shot["seeds"])) == 3 and shot["num_train"] == task["num_train"] == kept
    assert shot["top1_mean"] == pytest.approx(statistics.fmean(shot["top1"]))
    assert shot["top1_std"] == pytest.approx(statistics.stdev(shot["top1"])) and task["top1_std"] == shot["top1_std"]
    best = max(task["cells"], key=lambda c: (c["top1"], -c["val_loss"]))
    assert task["top1"] == best["top1"] == pytest.approx(statistics.fmean(best["top1_splits"]))
    assert best["top1_splits"] == shot["top1"] and sum(map(sum, task["confusion"])) == 3 * task["num_val"]
    assert "low-shot, 0.5 of each class's training videos" in (tmp_path / "run" / "results.md").read_text()
    code, _, err = cli("probe", config, f"run.dir={tmp_path}/bad", "features.train_fraction=null")
    assert code == 2 and "features.splits: 3 splits of what? set features.train_fraction too" in err
