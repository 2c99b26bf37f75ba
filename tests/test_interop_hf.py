"""Hugging Face VJEPA2Model <-> our encoder and predictor, number for number.

The parity tests read a golden fixture (tests/fixtures/golden/hf_vjepa2: a tiny random VJEPA2Model saved with
transformers' save_pretrained, and its outputs, from tools/golden_fixtures.py), so they run without
transformers. Where transformers is installed the live tests also check that the library still gives the
stored outputs and read our `--to hf` export back with its own from_pretrained; under CI they may not skip.
Negative controls show the comparisons have teeth: the interleaved RoPE, the wrong mask token, the wrong head
count and a transposed weight each miss the tolerance by far.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from golden import GOLDEN, inputs, max_diff, require_transformers, tensors

from videojepa.encoder_io import load_encoder, load_predictor
from videojepa.models.registry import encoder_from_arch

# Measured against the fixture (fp32, one thread, this machine): <= 1.7e-6 (encoder, masked encoder, block 0),
# 5.1e-7 (predictor), outputs of magnitude ~2.5. 3e-5 leaves ~18x for other CPUs' kernels.
TOL = 3e-5
CONTROL = 100 * TOL
FRAMES, CROP, GRID, CTX = 4, 16, (2, 4, 4), 20
FIXTURE = GOLDEN / "hf_vjepa2"


def randomise(module: torch.nn.Module, seed: int) -> None:
    """Every parameter of a transformers model random (HF initialises biases and mask tokens to zero, which would
    hide swapped keys); test_interop_hf_classifier.py's live models use it."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 0.5 if p.ndim == 1 or "mask_tokens" in name else 0.3 / p[0].numel() ** 0.25
            p.copy_(
                torch.randn(p.shape, generator=gen) * scale
                + (1.0 if name.endswith(("norm1.weight", "norm2.weight", "layernorm.weight")) else 0.0)
            )


def gather(x, ids):
    return x.gather(1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def hf_inputs():
    """HF's clips (B, T, C, H, W), ours (B, C, T, H, W), and unsorted per-sample context / target ids."""
    ins = inputs()
    return ins["video"].transpose(1, 2), ins["video"], ins["perm0"][:, :CTX], ins["perm0"][:, CTX:]


@pytest.fixture
def converted(tmp_path, cli):
    code, out, err = cli("convert", "--from", "hf", FIXTURE, tmp_path / "ours")
    assert code == 0, err
    return load_encoder(tmp_path / "ours"), load_predictor(tmp_path / "ours"), tmp_path


def our_outputs(encoder, predictor, expected) -> dict:
    _, clip, ctx, tgt = hf_inputs()
    with torch.no_grad():
        return {
            "encoder": max_diff(encoder(clip), expected["encoder"]),
            "masked encoder": max_diff(encoder(clip, keep=ctx), expected["masked_encoder"]),
            "block 0": max_diff(encoder(clip, layers=[0])[0], expected["layer0"]),
            # our predictor on HF's own encoder output, so that only the predictor is compared
            "predictor": max_diff(predictor(gather(expected["encoder"], ctx), ctx, tgt, GRID), expected["predictor"]),
        }


def test_hf_vjepa2_parity_with_negative_controls(converted, one_thread):
    encoder, predictor, _ = converted
    expected = tensors("hf_vjepa2/expected.safetensors")
    card = encoder.card
    assert card.source["format"] == "hf" and card.clip.frames == FRAMES and card.clip.crop == CROP
    assert encoder.arch["pos_embed"] == "rope_vjepa2" and predictor.default_mask_index == 1
    diffs = our_outputs(encoder, predictor, expected)
    _, clip, ctx, tgt = hf_inputs()
    with torch.no_grad():
        interleaved = encoder_from_arch({**encoder.arch, "pos_embed": "rope"})
        interleaved.load_state_dict(encoder.state_dict())
        wrong_heads = encoder_from_arch({**encoder.arch, "num_heads": 1})
        wrong_heads.load_state_dict(encoder.state_dict())
        transposed = encoder_from_arch(encoder.arch)
        state = dict(encoder.state_dict())
        state["blocks.0.attn.proj.weight"] = state["blocks.0.attn.proj.weight"].t().contiguous()
        transposed.load_state_dict(state)
        context = gather(expected["encoder"], ctx)
        controls = {
            "interleaved rope": max_diff(interleaved.eval()(clip), expected["encoder"]),
            "1 head": max_diff(wrong_heads.eval()(clip), expected["encoder"]),
            "a transposed weight": max_diff(transposed.eval()(clip), expected["encoder"]),
            "mask token 0": max_diff(predictor(context, ctx, tgt, GRID, mask_index=0), expected["predictor"]),
        }
    print("\nHF parity max abs diff:", diffs, "\nnegative controls:", controls)
    assert all(d < TOL for d in diffs.values()), diffs
    assert all(d > CONTROL for d in controls.values()), controls


def test_export_to_hf_writes_the_weights_it_read(converted, cli):
    """`--to hf` (no transformers needed): the same tensors under HF's names, the config's architecture keys."""
    import json

    from safetensors.torch import load_file

    _, _, tmp_path = converted
    code, out, err = cli("convert", "--to", "hf", tmp_path / "ours", tmp_path / "back")
    assert code == 0, err
    original, back = (
        load_file(str(FIXTURE / "model.safetensors")),
        load_file(str(tmp_path / "back" / "model.safetensors")),
    )
    assert set(back) == set(original)
    assert max(max_diff(back[k], original[k]) for k in original) == 0.0  # fp16 values, stored back in fp32
    config, written = (
        json.loads((FIXTURE / "config.json").read_text()),
        json.loads((tmp_path / "back/config.json").read_text()),
    )
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "patch_size", "tubelet_size", "crop_size"):
        assert written[key] == config[key], key


def test_the_live_library_still_gives_the_stored_outputs_and_reads_our_export(converted, cli, one_thread):
    transformers = require_transformers()
    _, _, tmp_path = converted
    expected = tensors("hf_vjepa2/expected.safetensors")
    video, _, ctx, tgt = hf_inputs()
    assert cli("convert", "--to", "hf", tmp_path / "ours", tmp_path / "back")[0] == 0
    diffs = {}
    for name, folder in (("stored", FIXTURE), ("--to hf export", tmp_path / "back")):
        model = transformers.VJEPA2Model.from_pretrained(folder, dtype=torch.float32).eval()
        with torch.no_grad():
            diffs[f"{name} encoder"] = max_diff(model.get_vision_features(video), expected["encoder"])
            predicted = model(video, context_mask=[ctx], target_mask=[tgt]).predictor_output.last_hidden_state
            diffs[f"{name} predictor"] = max_diff(predicted, expected["predictor"])
    print("\nlive transformers vs the fixture:", diffs)
    assert all(d < TOL for d in diffs.values()), diffs


def test_convert_refuses_renamed_key(cli, tmp_path):
    from safetensors.torch import load_file, save_file

    hf_dir = tmp_path / "hf"
    shutil.copytree(FIXTURE, hf_dir)
    weights = load_file(str(hf_dir / "model.safetensors"))
    weights["encoder.layer.1.attention.kee.weight"] = weights.pop("encoder.layer.1.attention.key.weight")
    save_file(weights, str(hf_dir / "model.safetensors"))
    code, out, err = cli("convert", "--from", "hf", hf_dir, tmp_path / "bad")
    assert code == 2 and not (tmp_path / "bad").exists()
    assert "missing 1: encoder.layer.1.attention.key.weight" in err
    assert "unexpected 1: encoder.layer.1.attention.kee.weight" in err


def test_a_hub_id_resolves_to_its_cached_snapshot_without_going_online(tmp_path, one_thread):
    from videojepa.interop import convert

    snapshot = tmp_path / "cache" / "models--facebook--vjepa2-tiny" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(FIXTURE / name, snapshot / name)
    (tmp_path / "cache" / "models--facebook--vjepa2-tiny" / "refs").mkdir()
    (tmp_path / "cache" / "models--facebook--vjepa2-tiny" / "refs" / "main").write_text("0123abcd")
    out = convert("hf", "facebook/vjepa2-tiny", tmp_path / "ours", cache_dir=tmp_path / "cache")
    encoder = load_encoder(out)
    assert encoder.card.source["path"] == str(snapshot.resolve())
    with torch.no_grad():
        assert max_diff(encoder(hf_inputs()[1]), tensors("hf_vjepa2/expected.safetensors")["encoder"]) < TOL


def test_a_source_that_is_neither_a_path_nor_a_hub_id(cli, tmp_path):
    code, out, err = cli("convert", "--from", "hf", tmp_path / "nowhere", tmp_path / "ours")
    assert code == 2 and "no such file or folder (nor a Hub model id" in err
