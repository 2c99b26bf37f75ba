"""Hugging Face VideoMAE -> our encoder (1-D sin-cos over the flat token index, q/v biases without a k bias,
no final norm under mean pooling), full and masked, and as a SALT student's frozen teacher."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from conftest import tiny_overrides  # noqa: E402

from videojepa.encoder_io import load_encoder  # noqa: E402
from videojepa.models.registry import encoder_from_arch  # noqa: E402

FRAMES, CROP = 8, 32


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


@pytest.mark.parametrize(
    "kind,mean_pooling", [("VideoMAEModel", True), ("VideoMAEModel", False), ("VideoMAEForPreTraining", True)]
)
def test_videomae_parity_full_and_masked(cli, tmp_path, kind, mean_pooling, one_thread):
    hf = randomised(getattr(transformers, kind)(tiny_config(mean_pooling)), 0)
    hf.save_pretrained(tmp_path / "hf")
    code, out, err = cli("convert", "--from", "videomae", tmp_path / "hf", tmp_path / "ours")
    assert code == 0, err
    encoder = load_encoder(tmp_path / "ours")
    assert encoder.arch["pos_embed"] == "sincos_1d" and encoder.arch["k_bias"] is False
    assert encoder.arch.get("final_norm", True) is (not mean_pooling)
    if kind == "VideoMAEForPreTraining":
        assert encoder.card.source["dropped"] == ["decoder", "encoder_to_decoder", "mask_token"]
    body = hf.videomae if kind == "VideoMAEForPreTraining" else hf
    gen = torch.Generator().manual_seed(1)
    video = torch.randn(2, FRAMES, 3, CROP, CROP, generator=gen)
    n = (FRAMES // 2) * (CROP // 8) ** 2
    masked = torch.zeros(2, n, dtype=torch.bool)
    for row in range(2):
        masked[row, torch.randperm(n, generator=gen)[:40]] = True
    keep = torch.stack([torch.nonzero(~row).flatten() for row in masked])  # visible tokens, in HF's (sorted) order
    with torch.no_grad():
        full = body(video).last_hidden_state
        diffs = {
            "encoder": float((encoder(video.transpose(1, 2)) - full).abs().max()),
            "masked": float(
                (encoder(video.transpose(1, 2), keep=keep) - body(video, bool_masked_pos=masked).last_hidden_state)
                .abs()
                .max()
            ),
        }
        # negative control: V-JEPA's 3D sin-cos table in place of VideoMAE's flat 1-D one
        wrong = encoder_from_arch({**encoder.arch, "pos_embed": "sincos"})
        wrong.load_state_dict(encoder.state_dict())
        control = float((wrong.eval()(video.transpose(1, 2)) - full).abs().max())
    print(f"\nVideoMAE {kind} mean_pooling={mean_pooling} max abs diff: {diffs}; 3D sin-cos control: {control:.3g}")
    assert all(d < 1e-4 for d in diffs.values()), diffs
    assert control > 1e-2


def test_salt_student_learns_from_a_converted_videomae_teacher(cli, tiny_synth, tmp_path, one_thread):
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
