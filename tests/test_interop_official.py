"""Official V-JEPA 1 / V-JEPA 2 checkpoints convert strictly and give the official code's outputs.

The checkpoints and outputs are golden fixtures written by RUNNING the official code (tools/golden_fixtures.py:
its VisionTransformer and VisionTransformerPredictor with random weights, saved through DistributedDataParallel
around the multi-mask wrappers as its train.py saves them). Each comparison has a negative control that a
plausible bug (a transposed weight, sin-cos axes in another order, the other RoPE layout, the wrong mask token, target
queries without positions) would produce, and that misses by far.
"""

from __future__ import annotations

import os

import pytest
import torch
from golden import inputs, max_diff, numbers, official_checkpoint, tensors

from videojepa.encoder_io import load_encoder, load_predictor

FAMILIES = ("vjepa1", "vjepa2")
GRID = (2, 4, 4)  # 4 frames x 16 px, tubelet 2, patch 4
# Measured against the fixtures (fp32, one thread, this machine): encoder, masked encoder and block-0 outputs
# <= 1.4e-6, predictor <= 1.1e-6 (outputs of magnitude ~2). 2e-5 leaves ~15x for other CPUs' kernels.
TOL = 2e-5
CONTROL = 100 * TOL  # a negative control must miss by at least this


def convert_args(which="target_encoder"):
    return ["--which", which, "--heads", 2, "--predictor-heads", 2, "--frames", 4, "--crop", 16]


def converted(cli, tmp_path, family, which="target_encoder"):
    tmp_path.mkdir(exist_ok=True)
    official_checkpoint(family, tmp_path / "model.pt")
    code, out, err = cli(
        "convert", "--from", "official", tmp_path / "model.pt", tmp_path / "ours", *convert_args(which)
    )
    assert code == 0, err
    return load_encoder(tmp_path / "ours"), load_predictor(tmp_path / "ours")


def sincos_axes_reversed(embed_dim, grid):
    """V-JEPA's uniform-power 3D sin-cos table (2 * ceil(D / 6) channels per axis, then cut to D) with the axes
    concatenated as (width, height, time) instead of the official (time, height, width): a plausible bug."""

    def axis(dim, pos):
        omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
        angles = pos.double()[:, None] * omega[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    per_axis = 2 * -(-embed_dim // 6)
    t, h, w = (c.flatten() for c in torch.meshgrid(*(torch.arange(n) for n in grid), indexing="ij"))
    return torch.cat([axis(per_axis, w), axis(per_axis, h), axis(per_axis, t)], dim=1)[:, :embed_dim].float()


def predict(predictor, out, ins, i, mask_index=None):
    """Our predictor on the OFFICIAL encoder's context features, so only the predictor is compared."""
    return predictor(
        out[f"out/context{i}"], ins[f"ctx{i}"], ins[f"tgt{i}"], GRID, mask_index=i if mask_index is None else mask_index
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_official_encoders_and_predictor_match_the_official_outputs(cli, tmp_path, family, one_thread, monkeypatch):
    ins, out, meta = inputs(), tensors(f"official_{family}.safetensors"), numbers(f"official_{family}.json")
    target, predictor = converted(cli, tmp_path / "t", family, "target_encoder")
    online, _ = converted(cli, tmp_path / "o", family, "encoder")
    assert target.card.source["family"] == family and target.card.clip.frames == meta["frames"]
    assert target.arch["pos_embed"] == ("sincos" if family == "vjepa1" else "rope_vjepa2")
    assert predictor.arch["num_mask_tokens"] == meta["predictor"]["num_mask_tokens"]
    video = ins["video"]
    with torch.no_grad():
        diffs = {
            "target encoder": max_diff(target(video), out["out/target_encoder"]),
            "block 0": max_diff(target(video, layers=[0])[0], out["out/target_layer0"]),
            **{
                f"masked encoder {i}": max_diff(online(video, keep=ins[f"ctx{i}"]), out[f"out/context{i}"])
                for i in (0, 1)
            },
            **{f"predictor {i}": max_diff(predict(predictor, out, ins, i), out[f"out/predictor{i}"]) for i in (0, 1)},
        }
        controls = {
            "--which picked the other network": max_diff(online(video), out["out/target_encoder"]),
            "the other mask token": max_diff(predict(predictor, out, ins, 0, mask_index=1), out["out/predictor0"]),
        }
        if family == "vjepa1":
            from videojepa.models import vit

            monkeypatch.setattr(vit, "sincos_3d", sincos_axes_reversed)  # a fresh encoder builds its table from it
            other_table = load_encoder(tmp_path / "t" / "ours")
            controls["sin-cos axes in (w, h, t) order"] = max_diff(other_table(video), out["out/target_encoder"])
        else:
            from videojepa.models.registry import encoder_from_arch

            interleaved = encoder_from_arch({**target.arch, "pos_embed": "rope"})
            interleaved.load_state_dict(target.state_dict())
            controls["interleaved RoPE"] = max_diff(interleaved.eval()(video), out["out/target_encoder"])
    print(f"\nofficial {family} max abs diff: {diffs}\nnegative controls: {controls}")
    assert all(d < TOL for d in diffs.values()), diffs
    assert all(d > CONTROL for d in controls.values()), controls


@pytest.mark.parametrize("family", FAMILIES)
def test_a_transposed_official_weight_is_seen(cli, tmp_path, family, one_thread):
    """A square weight stored transposed converts (the shapes agree) but the outputs miss the official ones."""
    official_checkpoint(family, tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    key = "module.backbone.blocks.1.attn.proj.weight"
    payload["target_encoder"][key] = payload["target_encoder"][key].t().contiguous()
    torch.save(payload, tmp_path / "model.pt")
    code, _, err = cli("convert", "--from", "official", tmp_path / "model.pt", tmp_path / "ours", *convert_args())
    assert code == 0, err
    with torch.no_grad():
        miss = max_diff(
            load_encoder(tmp_path / "ours")(inputs()["video"]),
            tensors(f"official_{family}.safetensors")["out/target_encoder"],
        )
    assert miss > CONTROL, miss


def without_target_positions(predictor):
    """Plant the bug: the predictor adds positions to its context tokens but not to its target queries
    (its forward calls pos.add_absolute twice: context first, then the queries)."""
    real, calls = predictor.pos.add_absolute, []

    def add_absolute(tokens, ids, grid):
        calls.append(1)
        return real(tokens, ids, grid) if len(calls) % 2 == 1 else tokens

    predictor.pos.add_absolute = add_absolute
    return predictor


def test_sincos_target_queries_need_their_positions(cli, tmp_path, one_thread):
    """Hole: the target queries without positions under sin-cos (V-JEPA 1, vjepa/vitl16). With the bug planted
    the official V-JEPA 1 predictor's outputs are missed by far; under RoPE the line is a no-op."""
    ins, out = inputs(), tensors("official_vjepa1.safetensors")
    _, predictor = converted(cli, tmp_path, "vjepa1")
    with torch.no_grad():
        good = max_diff(predict(predictor, out, ins, 0), out["out/predictor0"])
        planted = max_diff(predict(without_target_positions(predictor), out, ins, 0), out["out/predictor0"])
    print(f"\nV-JEPA 1 predictor: {good:.3g} as written, {planted:.3g} without target positions")
    assert good < TOL and planted > CONTROL


def test_a_damaged_official_file_names_the_removed_renamed_and_reshaped_tensors(cli, tmp_path):
    official_checkpoint("vjepa2", tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    enc = payload["target_encoder"]
    del enc["module.backbone.blocks.0.norm2.bias"]
    enc["module.backbone.blocks.1.mlp.fc_2.weight"] = enc.pop("module.backbone.blocks.1.mlp.fc2.weight")
    enc["module.backbone.blocks.1.attn.proj.weight"] = enc["module.backbone.blocks.1.attn.proj.weight"].reshape(14, 56)
    torch.save(payload, tmp_path / "model.pt")
    code, out, err = cli("convert", "--from", "official", tmp_path / "model.pt", tmp_path / "ours", *convert_args())
    assert code == 2 and not (tmp_path / "ours").exists()
    assert len(err.strip().splitlines()) == 1
    for expected in (
        "missing 2: blocks.0.norm2.bias, blocks.1.mlp.fc2.weight",
        "unexpected 1: blocks.1.mlp.fc_2.weight",
        "wrong shape 1: blocks.1.attn.proj.weight (14, 56), expected (28, 28)",
    ):
        assert expected in err, err


def test_the_head_count_is_never_guessed(cli, tmp_path):
    official_checkpoint("vjepa2", tmp_path / "model.pt")
    code, out, err = cli("convert", "--from", "official", tmp_path / "model.pt", tmp_path / "ours")
    assert code == 2 and "do not store the head count" in err and "--arch" in err


class Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused(cli, tmp_path):
    torch.save({"target_encoder": {"x": Planted(tmp_path / "pwned")}}, tmp_path / "evil.pt")
    code, out, err = cli("convert", "--from", "official", tmp_path / "evil.pt", tmp_path / "ours")
    assert code == 2 and "evil.pt: refused: loading it would import or call code" in err
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "ours").exists()


def test_head_counts_come_from_the_registry_of_the_checkpoints_family():
    from videojepa.interop.official import _heads
    from videojepa.models.registry import RELEASED, find_architecture

    # a V-JEPA 2 ViT-g (no pos_embed in the file) has 22 heads; V-JEPA 1's ViT-g of the same size has 16
    assert _heads("vjepa2", 1408, 40, None, None, "f") == ("vjepa2_vitg", 22)
    assert _heads("vjepa1", 1408, 40, None, None, "f") == ("vit_giant", 16)
    assert _heads("vjepa2", 1024, 24, None, None, "f") == ("vjepa2_vitl", 16)
    assert _heads("vjepa2", 1024, 24, None, 8, "f") == (None, 8)  # --heads wins
    assert RELEASED["vjepa2_vitg"]["frames_per_clip"] == 64 and RELEASED["vjepa2_vitg"]["crop_size"] == 256
    assert find_architecture(1408, 40, 22, 6144, "rope_vjepa2") == "vjepa2_vitg"
    assert find_architecture(1408, 40, 16, 6144, "rope_vjepa2") is None
