"""The frozen-evaluation presets (eval/*) equal the official code and tables they cite, value by value, as
`videojepa config PRESET --json` resolves them.

The expected values are copied by hand from the sources (not from the presets): facebookresearch/jepa
configs/evals/vitl16_*.yaml with evals/{video,image}_classification_frozen/eval.py and utils.py, facebookresearch/vjepa2
configs/eval/vitl/{k400,ssv2}.yaml with its evals/video_classification_frozen/eval.py, and the V-JEPA paper's Table 6
where the code has no value. Where the paper and the code disagree the code's value is expected (and the preset's
comment says so).
"""

from __future__ import annotations

import json

from videojepa.config.provenance import flatten

# jepa configs/evals/vitl16_k400_16x8x3.yaml + evals/video_classification_frozen/eval.py (make_dataloader: no flip,
# scale (0.08, 1), ratio (0.75, 4/3), reprob 0.25, auto_augment -> utils.py rand-m7-n4-mstd0.5-inc1; training loader
# one view per segment; init_opt: AdamW defaults, biases and 1-D tensors excluded from weight decay, CosineWDSchedule
# to final_wd 1e-6; run_one_epoch: clip_grad_norm 1.0, softmax averaged over views; AttentiveClassifier depth 1 with
# num_heads = encoder.num_heads); batch 4 per GPU x 8 nodes x 8 tasks.
VJEPA_K400 = {
    "probe.kind": "attentive",
    "probe.blocks": 0,
    "probe.queries": 1,
    "probe.out_proj": True,
    "probe.heads": None,
    "probe.layers": [-1],
    "probe.test_views": "official",
    "data.frames_per_clip": 16,
    "data.frame_step": 4,
    "data.num_clips": 8,
    "data.num_views": 3,
    "data.crop_size": 224,
    "data.random_resize_scale": [0.08, 1.0],
    "data.random_resize_aspect_ratio": [0.75, 4 / 3],
    "data.horizontal_flip": False,
    "tasks.0.num_classes": 400,
    "optim.epochs": 20,
    "optim.batch_size": 256,
    "optim.lr": [1e-3],
    "optim.weight_decay": [0.01],
    "optim.final_weight_decay": 1e-6,
    "optim.decay_norms_and_biases": False,
    "optim.betas": [0.9, 0.999],
    "optim.grad_clip": 1.0,
    "features.cache": False,
    "augment.random_clips": True,
    "augment.views": 1,
    "augment.randaugment_n": 4,
    "augment.randaugment_m": 7.0,
    "augment.randaugment_mstd": 0.5,
    "augment.erase_prob": 0.25,
    "augment.auto_augment": False,
}
# configs/evals/vitl16_ssv2_16x2x3.yaml: 2 segments x 3 views, 174 classes, otherwise the K400 file
VJEPA_SSV2 = {**VJEPA_K400, "data.num_clips": 2, "tasks.0.num_classes": 174}

# vjepa2 configs/eval/vitl/k400.yaml: num_heads 16, num_probe_blocks 4 (3 self-attention blocks + the cross-attention),
# resolution 256, batch 4 x 64, the 5 x 4 grid of multihead_kwargs with final_weight_decay = weight_decay;
# eval.py init_opt: one parameter group (every parameter decays), no gradient clipping; modules.py CrossAttention:
# no output projection; the transforms as V-JEPA's.
VJEPA2_K400 = {
    **VJEPA_K400,
    "probe.blocks": 3,
    "probe.heads": 16,
    "probe.out_proj": False,
    "data.crop_size": 256,
    "optim.lr": [5e-3, 3e-3, 1e-3, 3e-4, 1e-4],
    "optim.weight_decay": [0.01, 0.1, 0.4, 0.8],
    "optim.final_weight_decay": None,
    "optim.decay_norms_and_biases": True,
    "optim.grad_clip": None,
}
VJEPA2_SSV2 = {**VJEPA2_K400, "data.num_clips": 2, "tasks.0.num_classes": 174}

# jepa configs/evals/vitl16_in1k.yaml + evals/image_classification_frozen/eval.py: timm create_transform with
# auto_augment 'original', re_prob 0.25 (pixel, 1 box), default scale (0.08, 1), ratio (3/4, 4/3), hflip 0.5;
# validation Resize(int(224 * 256 / 224)) + CenterCrop(224); images repeated to 16 frames; batch 16 x 64, wd 0.001,
# the same init_opt and clipping as the video probe.
VJEPA_IN1K = {
    "probe.kind": "attentive",
    "probe.blocks": 0,
    "probe.queries": 1,
    "probe.out_proj": True,
    "probe.heads": None,
    "probe.test_views": "official",
    "data.frames_per_clip": 16,
    "data.num_clips": 1,
    "data.num_views": 1,
    "data.crop_size": 224,
    "data.random_resize_scale": [0.08, 1.0],
    "data.random_resize_aspect_ratio": [0.75, 4 / 3],
    "data.horizontal_flip": True,
    "tasks.0.num_classes": 1000,
    "optim.epochs": 20,
    "optim.batch_size": 1024,
    "optim.lr": [1e-3],
    "optim.weight_decay": [0.001],
    "optim.final_weight_decay": 1e-6,
    "optim.decay_norms_and_biases": False,
    "optim.grad_clip": 1.0,
    "features.cache": False,
    "augment.random_clips": True,
    "augment.views": 1,
    "augment.randaugment_n": 0,
    "augment.auto_augment": True,
    "augment.erase_prob": 0.25,
}

SOURCES = {
    "eval/k400": VJEPA_K400,
    "eval/ssv2": VJEPA_SSV2,
    "eval/k400_vjepa2": VJEPA2_K400,
    "eval/ssv2_vjepa2": VJEPA2_SSV2,
    "eval/in1k": VJEPA_IN1K,
    "eval/places205": {**VJEPA_IN1K, "tasks.0.num_classes": 205},  # configs/evals/vitl16_places.yaml
    "eval/inat21": {**VJEPA_IN1K, "tasks.0.num_classes": 10000},  # configs/evals/vitl16_inat.yaml
}


def mismatches(cli, preset: str, *overrides: str) -> dict:
    code, out, err = cli("config", preset, *overrides, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["kind"] == "probe"
    values = flatten(report["config"])
    return {k: (values.get(k, "<missing>"), v) for k, v in SOURCES[preset].items() if values.get(k, "<missing>") != v}


# tests/test_presets.py checks every preset of SOURCES against these values and every value line for its citation


def test_an_eval_preset_that_drifts_from_its_source_is_seen(cli):
    # negative control: the paper's text (12 heads, flipped clips) in place of the code
    drift = mismatches(cli, "eval/k400", "probe.heads=12", "data.horizontal_flip=true")
    assert drift == {"probe.heads": (12, None), "data.horizontal_flip": (True, False)}


def test_an_eval_preset_runs_a_tiny_task_end_to_end(cli, tiny_synth, tmp_path, one_thread):
    """eval/k400_vjepa2 as it is (3 probe blocks, 20 cells, streamed RandAugmented clips, 8 x 3 views, softmax)
    shrunk to a vit_pico on the tiny synthetic motion task."""
    code, _, err = cli(
        "probe",
        "eval/k400_vjepa2",
        f"run.dir={tmp_path}",
        f"tasks.0.train={tiny_synth}/motion/train.csv",
        f"tasks.0.val={tiny_synth}/motion/val.csv",
        "tasks.0.num_classes=null",
        "model.name=vit_pico",
        "model.patch_size=8",
        "probe.heads=2",
        "probe.precision=fp32",
        "data.crop_size=32",
        "data.frames_per_clip=2",
        "data.frame_step=1",
        "data.num_workers=0",
        "optim.epochs=1",
        "optim.batch_size=4",
        "--quiet",
    )
    assert code == 0, err
    results = json.loads((tmp_path / "results.json").read_text())
    task = results["tasks"][0]
    assert len(task["cells"]) == 20 and results["probe"]["blocks"] == 3
    assert task["protocol"]["num_clips"] == 8 and task["protocol"]["average"] == "softmax"
    assert task["protocol"]["training"].startswith("streamed: random clips (crop, flip) + RandAugment n4 m7")
