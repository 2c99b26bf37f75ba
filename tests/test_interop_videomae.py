"""Hugging Face VideoMAE -> our encoder (1-D sin-cos over the flat token index, q/v biases without a k bias,
no final norm under mean pooling), full and masked, and as a SALT student's frozen teacher.

The parity tests read golden fixtures (tests/fixtures/golden/hf_videomae_{mean,cls}: tiny random VideoMAEModels
saved by transformers, and their outputs), so they run without transformers; the live tests (the library still
gives the stored outputs, a pre-training checkpoint's decoder is dropped, a SALT teacher) need it, and under CI
may not skip.
"""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_overrides
from golden import GOLDEN, inputs, max_diff, require_transformers, tensors

from videojepa.encoder_io import load_encoder
from videojepa.models.registry import encoder_from_arch

# Measured against the fixtures (fp32, one thread, this machine): <= 1.4e-6 (full and masked), outputs of
# magnitude ~6. 3e-5 leaves ~20x for other CPUs' kernels.
TOL = 3e-5
FRAMES, CROP = 8, 32  # the live tests' own tiny models


def fixture_inputs(name):
    """Our clips (B, C, T, H, W), HF's boolean mask of the targets, and the visible ids in HF's (sorted) order."""
    ins, expected = inputs(), tensors(f"hf_videomae_{name}/expected.safetensors")
    masked = torch.zeros(2, 32, dtype=torch.bool).scatter_(1, ins["perm0"][:, 20:], True)
    keep = torch.stack([torch.nonzero(~row).flatten() for row in masked])
    return ins["video"], masked, keep, expected


@pytest.mark.parametrize("name,mean_pooling", [("mean", True), ("cls", False)])
def test_videomae_parity_full_and_masked(cli, tmp_path, name, mean_pooling, one_thread):
    code, out, err = cli("convert", "--from", "videomae", GOLDEN / f"hf_videomae_{name}", tmp_path / "ours")
    assert code == 0, err
    encoder = load_encoder(tmp_path / "ours")
    assert encoder.arch["pos_embed"] == "sincos_1d" and encoder.arch["k_bias"] is False
    assert encoder.arch.get("final_norm", True) is (not mean_pooling)
    clip, _, keep, expected = fixture_inputs(name)
    with torch.no_grad():
        diffs = {
            "encoder": max_diff(encoder(clip), expected["encoder"]),
            "masked": max_diff(encoder(clip, keep=keep), expected["masked_encoder"]),
        }
        # negative controls: V-JEPA's 3D sin-cos table in place of VideoMAE's flat 1-D one; the final norm
        # switched the other way
        wrong = encoder_from_arch({**encoder.arch, "pos_embed": "sincos"})
        wrong.load_state_dict(encoder.state_dict())
        norm = encoder_from_arch({**encoder.arch, "final_norm": mean_pooling})
        norm.load_state_dict(encoder.state_dict(), strict=False)
        controls = {
            "3D sin-cos": max_diff(wrong.eval()(clip), expected["encoder"]),
            "final norm flipped": max_diff(norm.eval()(clip), expected["encoder"]),
        }
    print(f"\nVideoMAE {name} max abs diff: {diffs}; negative controls: {controls}")
    assert all(d < TOL for d in diffs.values()), diffs
    assert all(d > 100 * TOL for d in controls.values()), controls


@pytest.mark.parametrize("name", ["mean", "cls"])
def test_the_live_library_still_gives_the_stored_videomae_outputs(name, one_thread):
    transformers = require_transformers()
    model = transformers.VideoMAEModel.from_pretrained(GOLDEN / f"hf_videomae_{name}", dtype=torch.float32).eval()
    clip, masked, _, expected = fixture_inputs(name)
    video = clip.transpose(1, 2)
    with torch.no_grad():
        diffs = {
            "encoder": max_diff(model(video).last_hidden_state, expected["encoder"]),
            "masked": max_diff(model(video, bool_masked_pos=masked).last_hidden_state, expected["masked_encoder"]),
        }
    assert all(d < TOL for d in diffs.values()), diffs


def randomised(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(
                torch.randn(p.shape, generator=gen) * (0.5 if p.ndim == 1 else 0.3 / p[0].numel() ** 0.25)
                + (1.0 if "layernorm" in name and name.endswith("weight") else 0.0)
            )
    return model.eval()


def tiny_config(mean_pooling=True):
    """The live tests' tiny VideoMAE (also test_interop_videomae_classifier.py's)."""
    import transformers

    return transformers.VideoMAEConfig(
        image_size=CROP,
        patch_size=8,
        num_frames=FRAMES,
        tubelet_size=2,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=96,
        use_mean_pooling=mean_pooling,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
    )


def test_a_pretraining_checkpoint_drops_its_decoder_by_name(cli, tmp_path, one_thread):
    transformers = require_transformers()
    hf = randomised(transformers.VideoMAEForPreTraining(tiny_config()), 0)
    hf.save_pretrained(tmp_path / "hf")
    code, out, err = cli("convert", "--from", "videomae", tmp_path / "hf", tmp_path / "ours")
    assert code == 0, err
    encoder = load_encoder(tmp_path / "ours")
    assert encoder.card.source["dropped"] == ["decoder", "encoder_to_decoder", "mask_token"]
    video = torch.randn(2, FRAMES, 3, CROP, CROP, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = max_diff(encoder(video.transpose(1, 2)), hf.videomae(video).last_hidden_state)
    assert diff < 1e-4, diff  # measured 3.8e-6 (a wider model than the fixtures': 64 channels)


def test_salt_student_learns_from_a_converted_videomae_teacher(cli, tiny_synth, tmp_path, one_thread):
    transformers = require_transformers()
    from videojepa.config import load_config
    from videojepa.train.logger import read_metrics
    from videojepa.train.trainer import Trainer

    hf = randomised(transformers.VideoMAEForPreTraining(tiny_config()), 0)
    hf.save_pretrained(tmp_path / "hf")
    assert cli("convert", "--from", "videomae", tmp_path / "hf", tmp_path / "teacher")[0] == 0
    cfg = load_config(
        "demo/salt_student",
        tiny_overrides(
            tiny_synth,
            tmp_path / "run",
            **{"method.teacher.checkpoint": tmp_path / "teacher", "train.steps": 6, "train.log_every": 3},
        ),
    )
    trainer = Trainer(cfg)
    teacher_before = {k: v.clone() for k, v in trainer.method.teacher.state_dict().items()}
    trainer.fit()
    teacher = trainer.method.teacher
    assert teacher.arch["pos_embed"] == "sincos_1d" and teacher.embed_dim == 64
    assert all(torch.equal(teacher_before[k], v) for k, v in teacher.state_dict().items())  # frozen
    losses = [r["loss"] for r in read_metrics(tmp_path / "run", kind="step")]
    assert len(losses) == 6 and all(torch.isfinite(torch.tensor(losses)))
