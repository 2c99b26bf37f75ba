"""Hugging Face VJEPA2Model <-> our encoder and predictor, number for number (random weights, offline).

Every parameter is randomised (HF initialises biases and mask tokens to zero, which would hide swapped
keys). Negative controls show the comparison has teeth: the interleaved `rope`, the wrong mask token and
the wrong head count each miss the tolerance by far.
"""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from videojepa.encoder_io import load_encoder, load_predictor  # noqa: E402
from videojepa.models.registry import encoder_from_arch  # noqa: E402

TOL = 1e-4
FRAMES, CROP = 6, 32


def randomise(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 0.5 if p.ndim == 1 or "mask_tokens" in name else 0.3 / p[0].numel() ** 0.25
            p.copy_(
                torch.randn(p.shape, generator=gen) * scale
                + (1.0 if name.endswith(("norm1.weight", "norm2.weight", "layernorm.weight")) else 0.0)
            )


def tiny_hf(tmp_path):
    config = transformers.VJEPA2Config(
        crop_size=CROP,
        frames_per_clip=FRAMES,
        patch_size=8,
        tubelet_size=2,
        hidden_size=32,
        num_attention_heads=2,
        num_hidden_layers=2,
        mlp_ratio=3.0,
        pred_hidden_size=40,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=2,
        pred_num_mask_tokens=3,
        pred_mlp_ratio=3.0,
    )
    model = transformers.VJEPA2Model(config).eval()
    randomise(model, 0)
    model.save_pretrained(tmp_path / "hf")
    return model


def gather(x, ids):
    return x.gather(1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def hf_masked_encoder(hf, video, keep):
    """HF's own layers run on the kept tokens only (its encoder never drops tokens by itself)."""
    h = gather(hf.encoder.embeddings(video), keep)
    for layer in hf.encoder.layer:
        h = layer(h, keep)[0]
    return hf.encoder.layernorm(h)


def max_diff(a, b):
    return float((a - b).abs().max())


@pytest.fixture
def converted(tmp_path, cli):
    torch.manual_seed(0)
    hf = tiny_hf(tmp_path)
    code, out, err = cli("convert", "--from", "hf", tmp_path / "hf", tmp_path / "ours")
    assert code == 0, err
    return hf, load_encoder(tmp_path / "ours"), load_predictor(tmp_path / "ours"), tmp_path


def test_hf_vjepa2_parity_with_negative_controls(converted, cli, one_thread):
    hf, encoder, predictor, tmp_path = converted
    card = encoder.card
    assert card.source["format"] == "hf" and card.clip.frames == FRAMES and card.clip.crop == CROP
    assert encoder.arch["pos_embed"] == "rope_vjepa2" and predictor.default_mask_index == 1
    gen = torch.Generator().manual_seed(1)
    video = torch.randn(2, FRAMES, 3, CROP, CROP, generator=gen)  # HF: (B, T, C, H, W)
    clip = video.transpose(1, 2)  # ours: (B, C, T, H, W)
    n = (FRAMES // 2) * (CROP // 8) ** 2
    perm = torch.stack([torch.randperm(n, generator=gen) for _ in range(2)])  # per sample, unsorted
    keep, ctx, tgt = perm[:, :30], perm[:, :25], perm[:, 25:40]
    diffs = {}
    with torch.no_grad():
        full = hf.get_vision_features(video)
        diffs["encoder"] = max_diff(encoder(clip), full)
        diffs["masked encoder"] = max_diff(encoder(clip, keep=keep), hf_masked_encoder(hf, video, keep))
        hidden = hf(video, skip_predictor=True, output_hidden_states=True).hidden_states
        offset = len(hidden) - encoder.depth  # the embeddings may come first
        ours_layers = encoder(clip, layers=[0, 1])
        diffs["layers"] = max(max_diff(o, hf.encoder.layernorm(hidden[offset + i])) for i, o in enumerate(ours_layers))
        hf_pred = hf(video, context_mask=[ctx], target_mask=[tgt]).predictor_output.last_hidden_state
        grid = encoder.grid(FRAMES, CROP, CROP)
        ours_pred = predictor(gather(full, ctx), ctx, tgt, grid)
        diffs["predictor"] = max_diff(ours_pred, hf_pred)

        # negative controls: each must miss by far more than the tolerance
        interleaved = encoder_from_arch({**encoder.arch, "pos_embed": "rope"})
        interleaved.load_state_dict(encoder.state_dict())
        wrong_heads = encoder_from_arch({**encoder.arch, "num_heads": 4})
        wrong_heads.load_state_dict(encoder.state_dict())
        controls = {
            "interleaved rope": max_diff(interleaved.eval()(clip), full),
            "mask token 0": max_diff(predictor(gather(full, ctx), ctx, tgt, grid, mask_index=0), hf_pred),
            "4 heads": max_diff(wrong_heads.eval()(clip), full),
        }
    assert all(d < TOL for d in diffs.values()), diffs
    assert all(d > 100 * TOL for d in controls.values()), controls

    # --to hf, then transformers' own from_pretrained: the same outputs again
    code, out, err = cli("convert", "--to", "hf", tmp_path / "ours", tmp_path / "back")
    assert code == 0, err
    back = transformers.VJEPA2Model.from_pretrained(tmp_path / "back").eval()
    with torch.no_grad():
        round_trip = {
            "encoder": max_diff(back.get_vision_features(video), full),
            "predictor": max_diff(
                back(video, context_mask=[ctx], target_mask=[tgt]).predictor_output.last_hidden_state, hf_pred
            ),
        }
    print(
        "\nHF parity max abs diff:",
        diffs,
        "\nnegative controls:",
        controls,
        "\n--to hf round trip max abs diff:",
        round_trip,
    )
    assert all(d < TOL for d in round_trip.values()), round_trip


def test_convert_refuses_renamed_key(converted, cli, tmp_path):
    from safetensors.torch import load_file, save_file

    hf_dir = tmp_path / "hf"
    tensors = load_file(str(hf_dir / "model.safetensors"))
    tensors["encoder.layer.1.attention.kee.weight"] = tensors.pop("encoder.layer.1.attention.key.weight")
    save_file(tensors, str(hf_dir / "model.safetensors"))
    code, out, err = cli("convert", "--from", "hf", hf_dir, tmp_path / "bad")
    assert code == 2 and not (tmp_path / "bad").exists()
    assert "missing 1: encoder.layer.1.attention.key.weight" in err
    assert "unexpected 1: encoder.layer.1.attention.kee.weight" in err


def test_a_hub_id_resolves_to_its_cached_snapshot_without_going_online(tmp_path, one_thread):
    from videojepa.interop import convert

    hf = tiny_hf(tmp_path)
    snapshot = tmp_path / "cache" / "models--facebook--vjepa2-tiny" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).write_bytes((tmp_path / "hf" / name).read_bytes())
    (tmp_path / "cache" / "models--facebook--vjepa2-tiny" / "refs").mkdir()
    (tmp_path / "cache" / "models--facebook--vjepa2-tiny" / "refs" / "main").write_text("0123abcd")
    out = convert("hf", "facebook/vjepa2-tiny", tmp_path / "ours", cache_dir=tmp_path / "cache")
    encoder = load_encoder(out)
    assert encoder.card.source["path"] == str(snapshot.resolve())
    video = torch.randn(1, FRAMES, 3, CROP, CROP)
    with torch.no_grad():
        assert max_diff(encoder(video.transpose(1, 2)), hf.get_vision_features(video)) < TOL


def test_a_source_that_is_neither_a_path_nor_a_hub_id(cli, tmp_path):
    code, out, err = cli("convert", "--from", "hf", tmp_path / "nowhere", tmp_path / "ours")
    assert code == 2 and "no such file or folder (nor a Hub model id" in err
