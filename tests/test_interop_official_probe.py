"""Official V-JEPA 2 attentive-probe checkpoints -> our probe, against outputs of the official code.

`fixtures/official_vjepa2_probe.safetensors` holds, for the official `AttentiveClassifier` (src/models/
attentive_pooler.py of facebookresearch/vjepa2 at c2963a4, random weights, width 16, 4 heads, 5 classes)
with `depth=4` (3 self-attention blocks, V-JEPA 2's configs) and `depth=1`: its state dict under DDP's
`module.` prefix, an input of features (3, 24, 16) and the logits the official module computed from them. The
features are small (std 3e-3, variance near the LayerNorm eps), so that the eps the official code uses shows.
The test writes a checkpoint in the layout the official evaluation saves ({"classifiers": [...], "opt",
"scaler", "epoch", "batch_size", "world_size"}) and converts it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from videojepa.classifiers import load_classifier

FIXTURE = Path(__file__).parent / "fixtures" / "official_vjepa2_probe.safetensors"
TOL = 1e-5  # measured 2-4e-7 here; logits are O(1)


def golden(depth: int) -> tuple[dict, torch.Tensor, torch.Tensor]:
    tensors = load_file(str(FIXTURE))
    prefix = f"depth{depth}."
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix + "module.")}
    return state, tensors[prefix + "input.features"], tensors[prefix + "output.logits"]


def write_official(path: Path, states: list[dict]) -> Path:
    """A file as evals/video_classification_frozen/eval.py's save_checkpoint writes it."""
    opts = []
    for state in states:
        params = [torch.nn.Parameter(v.clone()) for v in state.values()]
        opt = torch.optim.AdamW(params, lr=1e-3)
        sum(p.sum() for p in params).backward()
        opt.step()
        opts.append(opt.state_dict())
    payload = {"classifiers": states, "opt": opts, "scaler": None, "epoch": 3, "batch_size": 4, "world_size": 1}
    torch.save(payload, path)
    return path


@pytest.fixture
def encoder_dir(tmp_path):
    from videojepa.encoder_io import ClipProtocol, EncoderCard, save_encoder
    from videojepa.models import create_model

    torch.manual_seed(0)
    encoder = create_model("vit_pico", embed_dim=16, num_heads=2, depth=1, patch_size=8, pos_embed="rope_vjepa2")
    card = EncoderCard.describe(encoder).model_copy(update={"clip": ClipProtocol(frames=4, crop=16)})
    save_encoder(encoder, tmp_path / "enc" / "encoder.safetensors", card=card)
    return tmp_path / "enc"


def convert(cli, tmp_path, encoder_dir, name, *options, states=None):
    source = write_official(tmp_path / f"{name}.pt", states or [golden(4)[0]])
    code, out, err = cli(
        "convert", "--from", "official-probe", source, tmp_path / name, "--encoder", encoder_dir, *options
    )
    return code, err


@pytest.mark.parametrize("depth", [4, 1])
def test_official_probe_gives_the_official_logits(tmp_path, cli, encoder_dir, depth, one_thread):
    state, features, expected = golden(depth)
    other = golden(1 if depth == 4 else 4)[0]  # the file holds two probes; the second is converted
    code, err = convert(cli, tmp_path, encoder_dir, "probe", "--heads", "4", "--classifier", "1", states=[other, state])
    assert code == 0, err
    model = load_classifier(tmp_path / "probe")
    probe = model.head
    assert probe.arch["self_attn_blocks"] == depth - 1 and not probe.arch["out_proj"]
    assert probe.arch["norm_eps"] == 1e-5 and probe.card.source["classifier"] == 1
    assert model.protocol.average == "softmax" and model.protocol.frames == 4  # from the encoder card
    with torch.no_grad():
        error = float((probe(features) - expected).abs().max())
        wrong_heads = copy.deepcopy(probe)
        for module in [wrong_heads.pool.xattn, *(b.attn for b in wrong_heads.blocks)]:
            module.num_heads = 16  # the official default, which this probe was not trained with
        controls = {"16 heads": float((wrong_heads(features) - expected).abs().max())}
        our_eps = copy.deepcopy(probe)  # our probes' LayerNorm eps (1e-6), not torch's default the official uses
        for norm in [m for m in our_eps.modules() if isinstance(m, torch.nn.LayerNorm)]:
            norm.eps = 1e-6
        controls["eps 1e-6"] = float((our_eps(features) - expected).abs().max())
        if depth > 1:
            no_blocks = copy.deepcopy(probe)
            no_blocks.blocks = torch.nn.ModuleList()
            controls["blocks dropped"] = float((no_blocks(features) - expected).abs().max())
    print(f"\nofficial probe depth {depth}: logits max abs diff {error:.2e}; controls {controls}")
    assert error <= TOL
    assert all(d > 100 * TOL for d in controls.values()), controls


def test_a_missing_or_extra_tensor_is_refused_by_name(tmp_path, cli, encoder_dir, one_thread):
    state = golden(4)[0]
    missing = {k: v for k, v in state.items() if k != "module.pooler.blocks.1.mlp.fc2.bias"}
    code, err = convert(cli, tmp_path, encoder_dir, "a", "--heads", "4", states=[missing])
    assert code == 2 and "missing 1: module.pooler.blocks.1.mlp.fc2.bias" in err and "unexpected " not in err
    extra = {**state, "module.pooler.blocks.0.attn.q_norm.weight": torch.ones(4)}
    code, err = convert(cli, tmp_path, encoder_dir, "b", "--heads", "4", states=[extra])
    assert code == 2 and "unexpected 1: module.pooler.blocks.0.attn.q_norm.weight" in err and "(missing " not in err
    renamed = dict(state)
    renamed["module.linear.weights"] = renamed.pop("module.linear.weight")
    code, err = convert(cli, tmp_path, encoder_dir, "c", "--heads", "4", states=[renamed])
    assert code == 2 and "no linear.weight: not an official AttentiveClassifier" in err
    assert not any((tmp_path / n).exists() for n in "abc")


def test_what_the_official_probe_reader_refuses(tmp_path, cli, encoder_dir, one_thread):
    import argparse

    code, err = convert(cli, tmp_path, encoder_dir, "probe", "--heads", "5")
    assert code == 2 and "width 16 is not divisible by 5 heads" in err
    code, err = convert(cli, tmp_path, encoder_dir, "probe", "--classifier", "3")
    assert code == 2 and "--classifier 3, but the file holds 1 probe(s)" in err
    torch.save({"classifiers": [golden(4)[0]], "args": argparse.Namespace(lr=1)}, tmp_path / "pickled.pt")
    code, out, err = cli(
        "convert", "--from", "official-probe", tmp_path / "pickled.pt", tmp_path / "x", "--encoder", encoder_dir
    )
    assert code == 2 and "refused: loading it would import or call code" in err
    write_official(tmp_path / "probe.pt", [golden(4)[0]])
    code, out, err = cli("convert", "--from", "official", tmp_path / "probe.pt", tmp_path / "x")
    assert code == 2 and "an official V-JEPA 2 attentive-probe checkpoint" in err and "--from official-probe" in err
    code, out, err = cli("convert", "--from", "official-probe", tmp_path / "probe.pt", tmp_path / "x")
    assert code == 2 and "holds no encoder: give --encoder" in err
    code, out, err = cli("convert", "--from", "hf", tmp_path / "probe.pt", tmp_path / "x", "--segments", "2")
    assert code == 2 and "--segments only apply to --from official-probe" in err


def test_multi_clip_multi_view_protocol_averages_probabilities(tmp_path, cli, encoder_dir, one_thread):
    """2 segments x 3 views: each view's two clips are one token sequence; the views' softmax is averaged."""
    code, err = convert(cli, tmp_path, encoder_dir, "probe", "--heads", "4", "--segments", "2", "--views", "3")
    assert code == 0, err
    model = load_classifier(tmp_path / "probe")
    assert (model.protocol.num_clips, model.protocol.num_views, model.protocol.resize_ratio) == (2, 3, 1.0)
    video = torch.randn(2, 6, 3, 4, 16, 16, generator=torch.Generator().manual_seed(0))  # clip-major: k * 3 + v
    with torch.no_grad():
        model.head.head.weight.mul_(30)  # views whose logits differ a lot, so that the way they are averaged shows
        probabilities = []
        for v in range(3):
            tokens = torch.cat([model.encoder(video[:, k * 3 + v]) for k in range(2)], dim=1)
            probabilities.append(model.head(tokens).softmax(-1))
        reference = torch.stack(probabilities).mean(0)
        ours = model(video)
        logits_averaged = torch.stack([p.log() for p in probabilities]).mean(0)  # averaging logits instead
    assert torch.allclose(ours.exp(), reference, atol=1e-6)
    assert (ours.softmax(-1) - logits_averaged.softmax(-1)).abs().max() > 1e-3  # the other average differs
