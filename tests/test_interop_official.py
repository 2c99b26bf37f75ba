"""Official V-JEPA 1 / V-JEPA 2 checkpoints (key names and shapes as the official code writes them, built here
from our models with random weights) convert strictly and give the same outputs; bad files are refused."""

from __future__ import annotations

import os

import pytest
import torch

from videojepa.encoder_io import load_encoder, load_predictor
from videojepa.models.pos_embed import sincos_3d
from videojepa.models.predictor import Predictor
from videojepa.models.vit import VisionTransformer

FRAMES, CROP = 6, 32
GRID = (3, 4, 4)


def randomised(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return module.eval()


def official_encoder(encoder, family):
    """Our encoder's weights under the official names, with the wrappers' `module.backbone.` prefix."""
    out = {}
    for key, value in encoder.state_dict().items():
        key = key.replace("patch_embed.", "patch_embed.proj.")
        out[f"module.backbone.{key}"] = value.clone()
    if family == "vjepa1":
        out["module.backbone.pos_embed"] = sincos_3d(encoder.embed_dim, GRID)[None]
    return out


def official_predictor(predictor, family):
    out = {}
    for key, value in predictor.state_dict().items():
        if key == "mask_tokens":
            out.update({f"module.backbone.mask_tokens.{i}": t.reshape(1, 1, -1).clone() for i, t in enumerate(value)})
            continue
        head, _, rest = key.partition(".")
        name = {
            "embed": "predictor_embed",
            "blocks": "predictor_blocks",
            "norm": "predictor_norm",
            "head": "predictor_proj",
        }[head]
        out[f"module.backbone.{name}.{rest}"] = value.clone()
    if family == "vjepa1":
        out["module.backbone.predictor_pos_embed"] = sincos_3d(predictor.arch["embed_dim"], GRID)[None]
    return out


def make_checkpoint(path, family):
    pos = "rope_vjepa2" if family == "vjepa2" else "sincos"
    nets = {
        which: randomised(
            VisionTransformer(
                embed_dim=36, depth=2, num_heads=3, mlp_hidden=72, patch_size=8, tubelet_size=2, pos_embed=pos
            ),
            seed,
        )
        for seed, which in enumerate(("encoder", "target_encoder"))
    }
    predictor = randomised(
        Predictor(36, 36, embed_dim=40, depth=2, num_heads=2, mlp_ratio=3.0, num_mask_tokens=3, pos_embed=pos), 5
    )
    payload = {
        "encoder": official_encoder(nets["encoder"], family),
        "target_encoder": official_encoder(nets["target_encoder"], family),
        "predictor": official_predictor(predictor, family),
        "epoch": 3,
        "lr": 1e-4,
        "opt": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
    }
    torch.save(payload, path)
    return nets, predictor


def convert_args():
    return ["--heads", "3", "--predictor-heads", "2", "--frames", FRAMES, "--crop", CROP]


@pytest.mark.parametrize("family", ["vjepa2", "vjepa1"])
@pytest.mark.parametrize("which", ["target_encoder", "encoder"])
def test_official_checkpoint_converts_and_matches(cli, tmp_path, family, which, one_thread):
    nets, predictor = make_checkpoint(tmp_path / "model.pt", family)
    code, out, err = cli(
        "convert", "--from", "official", tmp_path / "model.pt", tmp_path / "ours", "--which", which, *convert_args()
    )
    assert code == 0, err
    encoder, ours_pred = load_encoder(tmp_path / "ours"), load_predictor(tmp_path / "ours")
    assert encoder.card.source["which"] == which and encoder.card.source["family"] == family
    assert encoder.card.clip.frames == FRAMES and encoder.card.clip.crop == CROP
    assert ours_pred.default_mask_index == (1 if family == "vjepa2" else 0)
    clip = torch.randn(2, 3, FRAMES, CROP, CROP, generator=torch.Generator().manual_seed(3))
    ids = torch.stack([torch.randperm(48, generator=torch.Generator().manual_seed(i)) for i in range(2)])
    with torch.no_grad():
        feats, reference = encoder(clip), nets[which](clip)
        diffs = {
            "encoder": float((feats - reference).abs().max()),
            "predictor": float(
                (
                    ours_pred(feats[:, :20], ids[:, :20], ids[:, 20:30], GRID, mask_index=2)
                    - predictor(feats[:, :20], ids[:, :20], ids[:, 20:30], GRID, mask_index=2)
                )
                .abs()
                .max()
            ),
        }
        other = nets["encoder" if which == "target_encoder" else "target_encoder"](clip)
    print(f"\nofficial {family} {which} max abs diff: {diffs}")
    assert all(d < 1e-4 for d in diffs.values()), diffs
    assert float((feats - other).abs().max()) > 0.1  # --which picked the named network, not the other


def test_a_damaged_official_file_names_the_removed_renamed_and_reshaped_tensors(cli, tmp_path):
    make_checkpoint(tmp_path / "model.pt", "vjepa2")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    enc = payload["target_encoder"]
    del enc["module.backbone.blocks.0.norm2.bias"]
    enc["module.backbone.blocks.1.mlp.fc_2.weight"] = enc.pop("module.backbone.blocks.1.mlp.fc2.weight")
    enc["module.backbone.blocks.1.attn.proj.weight"] = enc["module.backbone.blocks.1.attn.proj.weight"].reshape(18, 72)
    torch.save(payload, tmp_path / "model.pt")
    code, out, err = cli("convert", "--from", "official", tmp_path / "model.pt", tmp_path / "ours", *convert_args())
    assert code == 2 and not (tmp_path / "ours").exists()
    assert len(err.strip().splitlines()) == 1
    for expected in (
        "missing 2: blocks.0.norm2.bias, blocks.1.mlp.fc2.weight",
        "unexpected 1: blocks.1.mlp.fc_2.weight",
        "wrong shape 1: blocks.1.attn.proj.weight (18, 72), expected (36, 36)",
    ):
        assert expected in err, err


def test_the_head_count_is_never_guessed(cli, tmp_path):
    make_checkpoint(tmp_path / "model.pt", "vjepa2")
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
