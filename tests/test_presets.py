"""The paper presets equal their sources, value by value, as `videojepa config PRESET --json` resolves them.

The expected values below are copied by hand from the files and tables each preset cites (not from the presets):
a preset that drifts from its source fails here. Every value line of a paper preset names its source in a comment.
"""

from __future__ import annotations

import json
import re

import pytest
from test_eval_presets import SOURCES as EVAL_SOURCES

from videojepa.config.loader import PRESET_DIR

# facebookresearch/jepa configs/pretrain/vitl16.yaml, app/vjepa/utils.py (predictor heads = encoder heads, AdamW
# default betas), batch 24 x 16 nodes x 8 GPUs, 300 epochs x 300 iterations, 40 warmup epochs, ipe_scale 1.25.
VJEPA_VITL16 = {
    "data.frames_per_clip": 16,
    "data.frame_step": 4,
    "data.crop_size": 224,
    "data.random_resize_scale": [0.3, 1.0],
    "data.random_resize_aspect_ratio": [0.75, 1.35],
    "model.name": "vit_large",
    "model.patch_size": 16,
    "model.tubelet_size": 2,
    "model.pos_embed": "sincos",
    "predictor.depth": 12,
    "predictor.embed_dim": 384,
    "predictor.num_heads": 16,
    "predictor.zero_init_mask_tokens": True,
    "masks.0.num_blocks": 8,
    "masks.0.spatial_scale": 0.15,
    "masks.0.temporal_scale": 1.0,
    "masks.0.aspect_ratio": [0.75, 1.5],
    "masks.1.num_blocks": 2,
    "masks.1.spatial_scale": 0.7,
    "masks.1.temporal_scale": 1.0,
    "masks.1.aspect_ratio": [0.75, 1.5],
    "method.name": "vjepa",
    "method.loss_exponent": 1.0,
    "method.ema": [0.998, 1.0],
    "method.feature_reg": 0.0,
    "train.steps": 90_000,
    "train.batch_size": 3072,
    "train.lr_schedule": "cosine",
    "train.lr": 6.25e-4,
    "train.start_lr": 2e-4,
    "train.final_lr": 1e-6,
    "train.warmup_steps": 12_000,
    "train.weight_decay": 0.04,
    "train.final_weight_decay": 0.4,
    "train.betas": [0.9, 0.999],
    "train.eps": 1e-8,
    "train.grad_clip": 10.0,
    "train.schedule_scale": 1.25,
    "train.lr_base_batch": None,
    "train.precision": "bf16",
}

# facebookresearch/vjepa2 configs/train/vitl16/pretrain-256px-16f.yaml, app/vjepa/train.py (betas (0.9, 0.999),
# no clipping), V-JEPA 2 paper (240k iterations of the main phase).
VJEPA2_VITL16 = {
    "data.frames_per_clip": 16,
    "data.fps": 4.0,
    "data.crop_size": 256,
    "data.random_resize_scale": [0.3, 1.0],
    "data.random_resize_aspect_ratio": [0.75, 1.35],
    "model.name": "vit_large",
    "model.patch_size": 16,
    "model.tubelet_size": 2,
    "model.pos_embed": "rope_vjepa2",
    "predictor.depth": 12,
    "predictor.embed_dim": 384,
    "predictor.num_heads": 12,
    "predictor.zero_init_mask_tokens": True,
    "masks.0.num_blocks": 8,
    "masks.0.spatial_scale": 0.15,
    "masks.1.num_blocks": 2,
    "masks.1.spatial_scale": 0.7,
    "method.name": "vjepa",
    "method.loss_exponent": 1.0,
    "method.ema": [0.99925, 0.99925],
    "method.feature_reg": 0.0,
    "train.steps": 240_000,
    "train.batch_size": 3072,
    "train.lr_schedule": "wsd",
    "train.cooldown_steps": 0,
    "train.lr": 5.25e-4,
    "train.start_lr": 1e-4,
    "train.final_lr": 5.25e-4,
    "train.warmup_steps": 12_000,
    "train.weight_decay": 0.04,
    "train.final_weight_decay": 0.04,
    "train.betas": [0.9, 0.999],
    "train.eps": 1e-8,
    "train.grad_clip": None,
    "train.schedule_scale": 1.25,
    "train.precision": "bf16",
    "train.activation_checkpointing": True,
}

# MCG-NJU/VideoMAE scripts/kinetics/..._base_..._epoch_1600/pretrain.sh, run_mae_pretraining.py defaults,
# modeling_pretrain.py; K400 ~240k videos (VideoMAE paper).
VIDEOMAE_VITB16 = {
    "data.frames_per_clip": 16,
    "data.frame_step": 4,
    "data.crop_size": 224,
    "data.horizontal_flip": False,
    "model.name": "vit_base",
    "model.pos_embed": "sincos_1d",
    "predictor.depth": 4,
    "predictor.embed_dim": 384,
    "predictor.num_heads": 6,
    "masks.0.kind": "tube",
    "masks.0.ratio": 0.9,
    "method.name": "videomae",
    "method.pixel_norm": "tubelet",
    "method.feature_reg": 0.0,
    "train.steps": 1600 * 240_000 // 2048,
    "train.batch_size": 2048,
    "train.lr_base_batch": 256,
    "train.lr": 1.5e-4,
    "train.start_lr": 1e-6,
    "train.final_lr": 1e-5,
    "train.warmup_steps": 40 * 240_000 // 2048,
    "train.lr_schedule": "cosine",
    "train.weight_decay": 0.05,
    "train.final_weight_decay": 0.05,
    "train.betas": [0.9, 0.95],
    "train.grad_clip": None,
    "train.schedule_scale": 1.0,
}

# The SALT paper (arXiv 2509.24317), as collected in SPEC section 9.
SALT_TEACHER = {
    "data.frames_per_clip": 16,
    "data.frame_step": 4,
    "data.crop_size": 224,
    "model.name": "vit_large",
    "model.patch_size": 16,
    "model.tubelet_size": 2,
    "model.pos_embed": "rope",
    "predictor.depth": 12,
    "predictor.embed_dim": 384,
    "masks.0.num_blocks": 8,
    "masks.0.spatial_scale": 0.15,
    "masks.0.temporal_scale": 1.0,
    "masks.1.num_blocks": 2,
    "masks.1.spatial_scale": 0.7,
    "masks.1.temporal_scale": 1.0,
    "method.name": "salt_teacher",
    "method.pixel_norm": "tubelet",
    "method.feature_reg": 0.0,
    "train.steps": 80_000,
    "train.batch_size": 3072,
    "train.lr_schedule": "cosine",
    "train.lr": 6.25e-4,
    "train.start_lr": 2e-4,
    "train.final_lr": 1e-6,
    "train.warmup_steps": 10_000,
    "train.weight_decay": 0.04,
    "train.final_weight_decay": 0.4,
    "train.grad_clip": 0.02,
}
SALT_STUDENT = {
    **SALT_TEACHER,
    "method.name": "salt_student",
    "method.teacher.model": "vit_large",
    "method.loss_exponent": 1.0,
    "predictor.num_heads": 16,
    "train.steps": 160_000,
}
del SALT_STUDENT["method.pixel_norm"]

# The V-JEPA paper's Table 8 (K400 column) with VideoMAE's fine-tuning conventions (run_class_finetuning.py: lr,
# min_lr and warmup_lr per 256 videos; kinetics.py: crops of area 0.08..1, aspect 0.75..1.3333).
FINETUNE_K400 = {
    "finetune.head": "linear",
    "finetune.head_dropout": 0.5,
    "finetune.layer_decay": 0.8,
    "model.name": "vit_huge",
    "model.tubelet_size": 2,
    "model.drop_path": 0.2,
    "data.frames_per_clip": 16,
    "data.frame_step": 4,
    "data.crop_size": 384,
    "data.random_resize_scale": [0.08, 1.0],
    "data.random_resize_aspect_ratio": [0.75, 1.3333],
    "train.epochs": 35,
    "train.warmup_epochs": 5,
    "train.batch_size": 64,
    "train.lr_base_batch": 256,
    "train.lr": 3e-4,
    "train.start_lr": 1e-8,
    "train.final_lr": 1e-6,
    "train.weight_decay": 0.05,
    "train.eps": 1e-8,
    "augment.repeated": 2,
    "augment.randaugment_n": 4,
    "augment.randaugment_m": 7.0,
    "augment.randaugment_mstd": 0.5,
    "augment.erase_prob": 0.25,
    "augment.label_smoothing": 0.1,
    "eval.num_segments": 5,
    "eval.num_crops": 3,
}
FINETUNE_SSV2 = {
    **FINETUNE_K400,
    "data.frames_per_clip": 32,
    "data.horizontal_flip": False,
    "train.epochs": 20,
    "train.lr": 1e-4,
    "eval.num_segments": 2,
}

SOURCES = {
    "vjepa/vitl16": VJEPA_VITL16,
    # configs/pretrain/vith16.yaml: vitl16.yaml with model_name vit_huge (16 heads)
    "vjepa/vith16": {**VJEPA_VITL16, "model.name": "vit_huge"},
    # configs/pretrain/vith16_384.yaml: crop 384, batch 10 x 30 nodes x 8 GPUs
    "vjepa/vith16_384": {**VJEPA_VITL16, "model.name": "vit_huge", "data.crop_size": 384, "train.batch_size": 2400},
    "vjepa2/vitl16": VJEPA2_VITL16,
    # configs/train/vitl16/cooldown-256px-64f.yaml: 64 frames, 40 x 300 steps, no warmup, LinearDecaySchedule
    # to 1e-6 over T_max = 1.25 x 40 x 300, batch 12 x 32 nodes x 8 GPUs
    "vjepa2/vitl16_cooldown": {
        **VJEPA2_VITL16,
        "data.frames_per_clip": 64,
        "model.init": "runs/vjepa2_vitl16",
        "train.steps": 12_000,
        "train.warmup_steps": 0,
        "train.cooldown_steps": 15_000,
        "train.final_lr": 1e-6,
    },
    "videomae/vitb16": VIDEOMAE_VITB16,
    # ..._large_..._epoch_1600/pretrain.sh: batch 8 x 64 GPUs, decoder depth 12; modeling_pretrain.py: 512 wide, 8 heads
    "videomae/vitl16": {
        **VIDEOMAE_VITB16,
        "model.name": "vit_large",
        "predictor.depth": 12,
        "predictor.embed_dim": 512,
        "predictor.num_heads": 8,
        "train.batch_size": 512,
        "train.steps": 1600 * 240_000 // 512,
        "train.warmup_steps": 40 * 240_000 // 512,
    },
    "salt/vitl16_teacher": SALT_TEACHER,
    "salt/vitl16_student": SALT_STUDENT,
    # the SALT paper's V-JEPA 2 compute reference: V-JEPA 2's recipe at 16 x 224 px, frame step 4, 240k steps
    "paper/vjepa2_vitl_224": {
        **VJEPA2_VITL16,
        "data.crop_size": 224,
        "data.fps": None,
        "data.frame_step": 4,
        "train.steps": 240_000,
    },
    "finetune/vjepa_k400": FINETUNE_K400,
    "finetune/vjepa_ssv2": FINETUNE_SSV2,
    # the V-JEPA paper's Table 7 (out_layers 18/20/22/24 of ViT-L's 24 blocks, 1-based: blocks 17..23 from 0, the
    # last and the 2nd, 4th, 6th before it) and SlowFast's AVA head and proposals threshold
    "eval/ava": {
        "probe.layers": [-7, -5, -3, -1],
        "roi.resolution": 7,
        "roi.sampling_ratio": 0,
        "roi.aligned": True,
        "data.detection_threshold": 0.9,
        "data.labelmap": "ava/annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt",
        "optim.epochs": 30,
        "optim.batch_size": 64,
        "optim.lr": 1e-4,
        "optim.weight_decay": 0.05,
        "optim.warmup_epochs": 2.0,
        "optim.warmup_lr": 1e-6,
        "optim.min_lr": 1e-6,
        "optim.eps": 1e-8,
    },
}

# the frozen-evaluation presets (eval/k400, ..., eval/ssv2_vjepa2), their sources cited in tests/test_eval_presets.py
SOURCES.update(EVAL_SOURCES)

PAPER_FOLDERS = ("vjepa", "vjepa2", "videomae", "salt", "paper", "finetune", "eval")


def mismatches(cli, preset: str, *overrides: str) -> dict:
    """{key: (resolved value, source's value)} for every cited value the resolved preset does not have."""
    from videojepa.config.provenance import flatten

    code, out, err = cli("config", preset, *overrides, "--json")
    assert code == 0, err
    values = flatten(json.loads(out)["config"])
    return {k: (values.get(k, "<missing>"), v) for k, v in SOURCES[preset].items() if values.get(k, "<missing>") != v}


@pytest.mark.parametrize("preset", sorted(SOURCES))
def test_preset_resolves_to_the_values_of_its_sources(cli, preset):
    assert mismatches(cli, preset) == {}


def test_a_preset_that_drifts_from_its_source_is_seen(cli):
    # negative control: the V-JEPA ViT-L predictor with 12 heads (this preset's value before it was checked)
    assert mismatches(cli, "vjepa/vitl16", "predictor.num_heads=12") == {"predictor.num_heads": (12, 16)}


def test_every_paper_preset_is_checked_here():
    presets = {
        str(p.relative_to(PRESET_DIR).with_suffix(""))
        for folder in PAPER_FOLDERS
        for p in (PRESET_DIR / folder).glob("*.yaml")
    }
    assert presets - {"paper/salt_vitl"} == set(SOURCES)  # salt_vitl is the plan of the two SALT stages


VALUE_LINE = re.compile(r"^\s*(- )?[A-Za-z_]+:\s*[^\s#]")


@pytest.mark.parametrize("folder", PAPER_FOLDERS)
def test_every_value_of_a_paper_preset_names_its_source(folder):
    """A value line carries a comment: the source's tag ([cfg], [t8], ...) or `ours`; a section header or
    a continuation of the line above is exempt."""
    unexplained = []
    for path in sorted((PRESET_DIR / folder).glob("*.yaml")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            if not VALUE_LINE.match(line) or line.lstrip(" -").startswith(("base:", "name:", "config:")):
                continue
            comment = line.partition("#")[2]
            if not re.search(r"\[[a-z0-9]+\]|\bours\b", comment):
                unexplained.append(f"{path.name}:{number}: {line.strip()}")
    assert unexplained == [], "\n".join(unexplained)


def test_config_names_where_each_key_was_set(cli):
    code, out, _ = cli("config", "vjepa2/vitl16_cooldown", "train.log_every=7", "masks.0.num_blocks=4", "--json")
    report = json.loads(out)
    sources = report["sources"]
    assert report["kind"] == "pretrain"
    assert sources["train.log_every"] == "override" and sources["masks.0.num_blocks"] == "override"
    assert sources["data.frames_per_clip"] == "vjepa2/vitl16_cooldown"  # the file itself
    assert sources["train.lr"] == "vjepa2/vitl16"  # its base
    assert sources["masks.0.spatial_scale"] == "vjepa2/vitl16"  # the list its base set, one entry overridden
    assert sources["masks.0.ratio"] == "default" and sources["run.seed"] == "default"
    assert report["config"]["train"]["log_every"] == 7


def test_config_text_output_and_kinds(cli, tmp_path):
    code, out, _ = cli("config", "vjepa/vitl16", "train.steps=5")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert code == 0 and rows["train.steps"] == ["5", "override"]
    assert rows["predictor.num_heads"] == ["16", "vjepa/vitl16"] and rows["run.seed"] == ["0", "default"]
    code, out, _ = cli("config", "paper/salt_vitl", "train.batch_size=8", "--json")
    stages = json.loads(out)["stages"]
    assert [s["name"] for s in stages] == ["teacher", "student"]
    assert all(s["config"]["train"]["batch_size"] == 8 for s in stages)
    assert all(s["sources"]["train.batch_size"] == "override" for s in stages)
    assert stages[1]["sources"]["train.grad_clip"] == "salt/vitl16_teacher"
    code, out, _ = cli("config", "demo/probe", "--json")
    assert json.loads(out)["kind"] == "probe"
    own = tmp_path / "mine.yaml"
    own.write_text("base: finetune/vjepa_k400\ntrain:\n  lr: 1.0e-3\n")
    code, out, _ = cli("config", own, "--json")
    report = json.loads(out)
    assert report["kind"] == "finetune" and report["sources"]["train.lr"] == str(own)
    assert report["sources"]["train.final_lr"] == "finetune/vjepa_k400"


def test_config_refuses_what_the_commands_refuse(cli):
    code, _, err = cli("config", "vjepa2/vitl16", "train.stpes=1")
    assert code == 2 and "did you mean 'train.steps'" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("config", "vjepa2/vitl16", "train.cooldown_steps=300000")
    assert code == 2 and "train.cooldown_steps: 300000: warmup (12000) and cooldown together exceed" in err
    code, _, err = cli("config", "vjepa/vitl16", "train.cooldown_steps=10")
    assert code == 2 and "belongs to train.lr_schedule=wsd" in err
