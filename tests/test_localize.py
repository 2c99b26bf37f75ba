"""`videojepa localize` end to end on the synthetic localisation task, with a random-init tiny encoder."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from videojepa.config.loader import load_config
from videojepa.data.ava import read_annotations, read_proposals
from videojepa.data.synth_localization import write_localization
from videojepa.eval import localize
from videojepa.eval.ava import evaluate, frame_map
from videojepa.eval.localize_config import LocalizeConfig
from videojepa.eval.localize_report import SCHEMA, TOP_KEYS
from videojepa.eval.localize_task import build_task
from videojepa.models.registry import ARCHITECTURES

pytestmark = pytest.mark.usefixtures("one_thread")

# 8-frame 32x32 clips, patch 8: 4 x 4 x 4 = 64 tokens of width 64 (vit_pico)
TINY = [
    "model.name=vit_pico",
    "model.patch_size=8",
    "data.crop_size=32",
    "data.frames_per_clip=8",
    "data.frame_step=1",
    "data.num_workers=0",
    "probe.precision=fp32",
    "optim.epochs=3",
    "report.pictures=2",
]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """24 videos (18 train / 6 val) of 8 frames, 32 x 32, 2-3 objects each."""
    root = tmp_path_factory.mktemp("loc")
    write_localization(str(root), num_videos=24, frames=8, size=32, seed=0, workers=1)
    return root / "localization"


def data_overrides(root: Path) -> list[str]:
    return [
        f"data.videos={root}/videos",
        f"data.train={root}/train.csv",
        f"data.val={root}/val.csv",
        f"data.labelmap={root}/labelmap.pbtxt",
        f"data.val_proposals={root}/val_proposals.csv",
    ]


def test_localize_end_to_end(synth, tmp_path, cli):
    code, out, err = cli("localize", "demo/localize", f"run.dir={tmp_path}", *data_overrides(synth), *TINY, "--quiet")
    assert code == 0, err
    assert "| frame mAP@0.5 | chance |" in out and f"wrote {tmp_path}/results.json" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["schema"] == SCHEMA and set(TOP_KEYS) <= set(results)
    assert (tmp_path / "results.md").read_text().startswith("Encoder: none (vit_pico, random init)")
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "keyframes.png").stat().st_size > 1000
    # the boxes evaluated: the proposals at or above 0.8 at the validation keyframes
    val = read_annotations(synth / "val.csv")
    proposals = [p for p in read_proposals(synth / "val_proposals.csv") if p.score >= 0.8]
    counts = results["counts"]
    assert counts["val"]["boxes_evaluated"] == len(proposals) and counts["val"]["groundtruth_boxes"] == len(val)
    assert counts["train"]["boxes"] == len(read_annotations(synth / "train.csv"))
    detections = (tmp_path / "detections.csv").read_text().splitlines()
    assert len(detections) == 4 * len(proposals)  # one per (box, class)
    # results are what the public evaluator says of detections.csv
    again = frame_map(synth / "val.csv", tmp_path / "detections.csv", synth / "labelmap.pbtxt")
    assert results["mAP"] == again["mAP"]
    assert {c["id"]: c["ap"] for c in results["classes"]} == again["per_class"]
    for key in ("mAP", "chance_mAP", "mAP_groundtruth_boxes"):
        assert 0.0 <= results[key] <= 1.0
    assert len(results["train_loss"]) == 3 and results["optim"]["steps"] == 3
    assert results["probe"]["feature_dim"] == 64 and results["protocol"]["boxes"] == "proposals"


def test_features_are_computed_once_per_keyframe_and_cached(synth, tmp_path, monkeypatch):
    clips = []
    real = localize.encode

    def counting(encoder, video, *args):
        clips.append(len(video))
        return real(encoder, video, *args)

    monkeypatch.setattr(localize, "encode", counting)
    cfg = load_config(
        "demo/localize",
        [f"run.dir={tmp_path}", *data_overrides(synth), *TINY, "report.pictures=0"],
        schema=LocalizeConfig,
    )
    results = localize.run_localization(cfg, log=None)
    train_frames = len({r.video_id for r in read_annotations(synth / "train.csv")})
    val_frames = len({r.video_id for r in read_annotations(synth / "val.csv")})
    assert sum(clips) == train_frames + val_frames  # one clip per keyframe, for all its boxes
    clips.clear()
    cached = localize.run_localization(cfg, log=None)
    assert clips == [] and cached["mAP"] == results["mAP"]  # from the feature cache, same numbers


def test_perfect_scores_on_ground_truth_boxes_give_map_one(synth):
    """The task's boxes, keyframes and classes line up with the evaluator: scoring each ground-truth box with its
    own labels gives mAP 1; shifting the scores by one box breaks it (the test can fail)."""
    cfg = load_config("demo/localize", [*data_overrides(synth), "data.val_proposals=null"], schema=LocalizeConfig)
    task = build_task(cfg.data, log=lambda _: None)
    assert task.val.evaluated.all()  # no proposals: the ground truth is evaluated
    labels = {(r.key, r.box): r.action_id for r in task.val_rows}
    scores = np.zeros((len(task.val), len(task.class_ids)))
    for i, box in enumerate(task.val.boxes):
        key = task.val.keyframes[task.val.frame[i]].key
        scores[i, task.class_ids.index(labels[(key, tuple(box))])] = 1.0
    perfect = evaluate(task.val_rows, localize.detection_rows(task.val, scores, task.class_ids), task.class_ids)
    assert perfect["mAP"] == 1.0
    shifted = evaluate(
        task.val_rows, localize.detection_rows(task.val, np.roll(scores, 1, 0), task.class_ids), task.class_ids
    )
    assert shifted["mAP"] < 0.9


def quadrant_videos(folder: Path) -> dict:
    """3 videos of 8 still frames, 32 x 32, each quarter one solid colour (12 distinct colours)."""
    from videojepa.data.synth import write_mp4

    folder.mkdir()
    rng = np.random.default_rng(0)
    colours = {}
    for v in range(3):
        frame = np.zeros((32, 32, 3), dtype=np.uint8)
        for q, (top, left) in enumerate(((0, 0), (0, 16), (16, 0), (16, 16))):
            colours[(f"q{v}", q)] = rng.integers(20, 236, 3)
            frame[top : top + 16, left : left + 16] = colours[(f"q{v}", q)]
        write_mp4(str(folder / f"q{v}.mp4"), np.repeat(frame[None], 8, 0), fps=8)
    return colours


def test_box_features_read_the_map_where_the_box_is(tmp_path, monkeypatch):
    """With an encoder whose tokens are their patch's mean colour, each box's feature is the colour of the
    quarter it lies in: the boxes' coordinates, keyframes and batching line up with the token maps."""
    colours = quadrant_videos(tmp_path / "videos")
    # Bilinear samples blend the two nearest token centres, so a box must keep its samples on the token centres
    # of its own quarter: in fractions of the frame, [0.02, 0.37] (left/top quarters) or [0.63, 0.98]
    rows, expected = [], []
    rng = np.random.default_rng(1)
    for v in range(3):
        for q in rng.permutation(4)[:3]:  # three boxes per keyframe, in random quarters
            corner = []
            for side in (q % 2, q // 2):  # x, then y
                extent = rng.uniform(0.1, 0.3)
                low = rng.uniform(0.02, 0.37 - extent) + 0.61 * side
                corner.append((low, low + extent))
            (x1, x2), (y1, y2) = corner
            rows.append(f"q{v},0.5,{x1:.3f},{y1:.3f},{x2:.3f},{y2:.3f},1,{q}")
            expected.append((f"q{v}", int(q)))
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "labels.pbtxt").write_text('item { name: "a" id: 1 }\n')
    cfg = load_config(
        "demo/localize",
        [f"data.videos={tmp_path}/videos", f"data.train={tmp_path}/train.csv", f"data.val={tmp_path}/train.csv",
         f"data.labelmap={tmp_path}/labels.pbtxt", "data.val_proposals=null", *TINY],
        schema=LocalizeConfig,
    )  # fmt: skip
    task = build_task(cfg.data, log=lambda _: None)

    def patch_colours(encoder, video, *args):  # (B, C, T, H, W) -> (B, T/2 * 4 * 4, C): each tubelet's mean
        B, C, T, H, W = video.shape
        x = video.reshape(B, C, T // 2, 2, H // 8, 8, W // 8, 8).mean((3, 5, 7))
        return x.permute(0, 2, 3, 4, 1).reshape(B, -1, C)

    monkeypatch.setattr(localize, "encode", patch_colours)

    class Grid:
        def grid(self, frames, height, width):
            return frames // 2, height // 8, width // 8

    features = localize.box_features(Grid(), task.train, cfg.data, cfg, "test")  # (boxes, 3), normalised colour
    mean, std = np.array(cfg.data.mean), np.array(cfg.data.std)
    palette = {k: (c / 255 - mean) / std for k, c in colours.items()}
    names = list(palette)
    for i, box in enumerate(task.train.boxes):
        video = task.train.keyframes[task.train.frame[i]].video_id
        x1, y1 = box[:2]
        quarter = int(x1 >= 0.5) + 2 * int(y1 >= 0.5)
        nearest = min(names, key=lambda k: np.abs(palette[k] - features[i].numpy()).max())
        assert nearest == (video, quarter) and (video, quarter) in expected
        assert np.abs(palette[nearest] - features[i].numpy()).max() < 0.1  # H.264 moves colours a few levels


def write_bad(tmp_path: Path, synth: Path, name: str, edit) -> Path:
    path = tmp_path / name
    lines = (synth / name).read_text().splitlines()
    lines[2] = edit(lines[2].split(","))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: ",".join(c[:5]), "train.csv:3: expected 8 columns"),
        (lambda c: ",".join([*c[:4], "1.25", *c[5:]]), "train.csv:3: x2 1.25 is outside [0, 1]"),
        (lambda c: ",".join(["nosuchvideo", *c[1:]]), "train.csv:3: video_id 'nosuchvideo' has no video in"),
        (lambda c: ",".join([*c[:6], "9", c[7]]), "train.csv:3: action_id 9 is not in the label map (ids: 1, 2, 3, 4)"),
    ],
)
def test_bad_annotations_stop_with_one_line(synth, tmp_path, cli, edit, message):
    bad = write_bad(tmp_path, synth, "train.csv", edit)
    code, _, err = cli(
        "localize", "demo/localize", f"run.dir={tmp_path / 'run'}", *data_overrides(synth), f"data.train={bad}", *TINY
    )
    assert code == 2
    assert err.startswith("videojepa localize: error: ") and message in err and err.count("\n") == 1


def test_config_errors_name_the_key(cli, tmp_path):
    code, _, err = cli("localize", "demo/localize", "data.videos=null")
    assert code == 2 and "data.videos: is not set" in err
    code, _, err = cli("localize", "demo/localize", "data.treshold=0.5")
    assert code == 2 and "unknown key 'data.treshold'" in err
    code, _, err = cli("localize", "demo/localize", "data.detection_threshold=1.5")
    assert code == 2 and "data.detection_threshold" in err


def test_eval_ava_preset_has_table_7():
    cfg = load_config("eval/ava", schema=LocalizeConfig)
    o = cfg.optim
    assert (o.epochs, o.batch_size, o.lr, o.weight_decay, o.warmup_epochs, o.warmup_lr, o.min_lr, o.eps) == (
        30, 64, 1e-4, 0.05, 2, 1e-6, 1e-6, 1e-8
    )  # fmt: skip
    assert o.betas[0] == 0.9 and cfg.data.detection_threshold == 0.9 and cfg.data.unmapped_labels == "skip"
    # Table 7's 1-based out_layers are these 0-based blocks of ViT-L (24 blocks) and ViT-H (32)
    for name, table7 in (("vit_large", [18, 20, 22, 24]), ("vit_huge", [26, 28, 30, 32])):
        depth = ARCHITECTURES[name]["depth"]
        assert [depth + layer + 1 for layer in cfg.probe.layers] == table7
    assert torch.tensor(cfg.probe.layers).lt(0).all()
