"""Hugging Face image towers (DINOv2, DINOv2 with registers, CLIP, SigLIP) as frame encoders.

Per frame, our tokens must equal the tower's own `last_hidden_state` without its class / register tokens (the
patch tokens after the norm HF applies: DINOv2's layernorm, SigLIP's post_layernorm, none for CLIP), and a
clip's frames must come out concatenated in time order (V-JEPA appendix B.1). Every parameter is randomised
(position tables, class and register tokens, layer scales included). Negative controls: frames reversed, the
class token kept (tokens shifted by one), and the norm the tower does not apply.
"""

from __future__ import annotations

import pytest
import torch
from golden import require_transformers  # noqa: E402

transformers = require_transformers()  # a skip, or under CI (VIDEOJEPA_CI=1) an error

from videojepa.encoder_io import load_encoder  # noqa: E402

TOL = 1e-5
SIZE, PATCH, FRAMES = 16, 4, 3


def randomised(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            unit = name.endswith("weight") and ("norm" in name or "layrnorm" in name)
            p.copy_(torch.randn(p.shape, generator=gen) * (0.5 if p.ndim <= 1 else 0.3 / p[0].numel() ** 0.25) + unit)
    return model.eval()


def towers():
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, image_size=SIZE, patch_size=PATCH)
    clip = dict(common, intermediate_size=48)
    return {
        "dinov2": lambda: transformers.Dinov2Model(transformers.Dinov2Config(**common, mlp_ratio=2)),
        "dinov2_swiglu": lambda: transformers.Dinov2Model(transformers.Dinov2Config(**common, use_swiglu_ffn=True)),
        "dinov2_registers": lambda: transformers.Dinov2WithRegistersModel(
            transformers.Dinov2WithRegistersConfig(**common, num_register_tokens=3)
        ),
        "clip": lambda: transformers.CLIPVisionModel(transformers.CLIPVisionConfig(**clip)),
        "clip_full": lambda: transformers.CLIPModel(
            transformers.CLIPConfig(
                vision_config=clip,
                text_config=dict(hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2),
                projection_dim=8,
            )
        ),
        "siglip": lambda: transformers.SiglipVisionModel(transformers.SiglipVisionConfig(**clip)),
    }


PREFIX = {"dinov2": 1, "dinov2_swiglu": 1, "dinov2_registers": 4, "clip": 1, "clip_full": 1, "siglip": 0}


def tower_tokens(model, frames: torch.Tensor, name: str, **kwargs) -> torch.Tensor:
    """HF's per-frame patch tokens of a clip (B, C, T, H, W), concatenated in time order."""
    vision = model.vision_model if name == "clip_full" else model
    outs = [vision(pixel_values=frames[:, :, t], **kwargs).last_hidden_state for t in range(frames.shape[2])]
    return torch.cat([o[:, PREFIX[name] :] for o in outs], dim=1), outs


@pytest.mark.parametrize("name", list(towers()))
def test_frame_encoder_equals_the_tower_frame_by_frame(name, cli, tmp_path, capsys, one_thread):
    torch.manual_seed(0)
    hf = randomised(towers()[name]())
    hf.save_pretrained(tmp_path / "hf")
    capsys.readouterr()
    code, out, err = cli("convert", "--from", "hf", tmp_path / "hf", tmp_path / "ours")
    assert code == 0, err
    encoder = load_encoder(tmp_path / "ours")
    card = encoder.card
    assert encoder.arch["kind"] == "frames" and encoder.tubelet_size == 1 and card.clip.crop == SIZE
    assert card.source["dropped_tokens"] == {0: [], 1: ["class"], 4: ["class", "3 registers"]}[PREFIX[name]]
    if name == "clip_full":
        assert "text_model" in card.source["dropped"] and "visual_projection" in card.source["dropped"]
    if name.startswith("clip"):
        assert "post_layernorm" in card.source["dropped"] and "no norm" in card.source["output"]
    if name == "siglip":
        assert "head" in card.source["dropped"] and "post_layernorm" in card.source["output"]
    clip = torch.randn(2, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference, per_frame = tower_tokens(hf, clip, name)
        ours = encoder(clip)
        assert ours.shape == (2, FRAMES * (SIZE // PATCH) ** 2, 32) == reference.shape
        error = float((ours - reference).abs().max())
        n = (SIZE // PATCH) ** 2
        reversed_time = torch.cat([ours[:, t * n : (t + 1) * n] for t in reversed(range(FRAMES))], dim=1)
        controls = {"frames reversed": float((reversed_time - reference).abs().max())}
        if PREFIX[name]:  # the class token kept: every token one place off
            kept = torch.cat([o[:, PREFIX[name] - 1 : -1] for o in per_frame], dim=1)
            controls["class token kept"] = float((ours - kept).abs().max())
        norm = torch.nn.functional.layer_norm
        if name.startswith("clip"):  # a final norm CLIP does not apply to its tokens
            controls["post_layernorm applied"] = float((norm(ours, (32,)) - reference).abs().max())
        else:  # the final norm dropped
            raw = encoder.norm
            encoder.norm = torch.nn.Identity()
            controls["final norm dropped"] = float((encoder(clip) - reference).abs().max())
            encoder.norm = raw
        # a size the position table was not learned for: resampled as HF does it
        big = torch.randn(1, 3, 2, SIZE + 2 * PATCH, SIZE + PATCH, generator=torch.Generator().manual_seed(2))
        kwargs = {} if name.startswith("dinov2") else {"interpolate_pos_encoding": True}
        resampled = float((encoder(big) - tower_tokens(hf, big, name, **kwargs)[0]).abs().max())
        # a middle layer: our layers=[0] is block 0's output through the same final norm
        if name == "dinov2":
            hidden = hf(pixel_values=clip[:, :, 0], output_hidden_states=True).hidden_states[1]
            layer0 = float((encoder(clip[:, :, :1], layers=[0])[0] - hf.layernorm(hidden)[:, 1:]).abs().max())
            assert layer0 <= TOL, layer0
    print(f"\n{name}: per-frame max abs diff {error:.2e}, resampled positions {resampled:.2e}; controls {controls}")
    assert error <= TOL and resampled <= TOL
    assert all(d > 100 * TOL for d in controls.values()), controls


def test_a_tower_extracts_and_probes_like_a_video_encoder(cli, tmp_path, capsys, tiny_synth, one_thread):
    import json

    randomised(towers()["dinov2"]()).save_pretrained(tmp_path / "hf")
    capsys.readouterr()
    assert cli("convert", "--from", "hf", tmp_path / "hf", tmp_path / "dino")[0] == 0
    video = next((tiny_synth / "videos").glob("*.mp4"))
    code, out, err = cli(
        "extract", "--checkpoint", tmp_path / "dino", "--input", video, "--out", tmp_path / "f.npy",
        "--frames", "4", "--frame-step", "2", "--pooling", "frame", "--workers", "0", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["shape"][1:] == [4, 32]  # one row per time step: 4 frames, not 2 tubelets
    code, out, err = cli(
        "probe", "demo/probe", f"run.dir={tmp_path}/probe", f"probe.checkpoint={tmp_path}/dino", "probe.heads=null",
        "tasks=[]", f"data.train={tiny_synth}/motion/train.csv", f"data.val={tiny_synth}/motion/val.csv",
        "data.frames_per_clip=4", "data.crop_size=16", "data.num_workers=0", "optim.epochs=1", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    results = json.loads((tmp_path / "probe" / "results.json").read_text())
    assert results["probe"]["heads"] == 4 and results["encoder"]["embed_dim"] == 32  # the tower's heads
