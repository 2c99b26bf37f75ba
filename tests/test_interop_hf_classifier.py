"""Hugging Face VJEPA2ForVideoClassification <-> our encoder + attentive probe, logit for logit (random weights).

Every parameter is randomised (zero biases or unit norms would hide swapped keys). The pooler has
self-attention layers, several classes, a head count other than 12 and an encoder MLP ratio other than the
pooler's fixed 4, so each of those is exercised. Negative controls show the comparison has teeth: the pooler's
self-attention layers dropped, the wrong head count and softmax instead of logits each miss by far.
"""

from __future__ import annotations

import copy

import pytest
import torch
from golden import require_transformers  # noqa: E402

transformers = require_transformers()  # a skip, or under CI (VIDEOJEPA_CI=1) an error

from test_interop_hf import randomise  # noqa: E402

from videojepa.classifiers import load_classifier  # noqa: E402

TOL = 1e-5
FRAMES, CROP, CLASSES = 4, 32, 7


def tiny_classifier(tmp_path, pooler_layers: int = 2):
    config = transformers.VJEPA2Config(
        crop_size=CROP,
        frames_per_clip=FRAMES,
        patch_size=8,
        tubelet_size=2,
        hidden_size=32,
        num_attention_heads=4,
        num_hidden_layers=2,
        mlp_ratio=3.0,
        pred_hidden_size=24,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=1,
        pred_num_mask_tokens=2,
        num_pooler_layers=pooler_layers,
        num_labels=CLASSES,
        id2label={i: f"action_{i}" for i in range(CLASSES)},
        label2id={f"action_{i}": i for i in range(CLASSES)},
    )
    torch.manual_seed(0)
    model = transformers.VJEPA2ForVideoClassification(config).eval()
    randomise(model, 0)
    model.save_pretrained(tmp_path / "hf")
    return model


def max_diff(a, b):
    return float((a - b).abs().max())


@pytest.fixture
def converted(tmp_path, cli, one_thread):
    hf = tiny_classifier(tmp_path)
    code, out, err = cli("convert", "--from", "hf", tmp_path / "hf", tmp_path / "ours")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == [
        "encoder.safetensors",
        "predictor.safetensors",
        "probe.safetensors",
    ]
    return hf, load_classifier(tmp_path / "ours"), tmp_path


def test_vjepa2_classifier_logits_equal_hf_with_negative_controls(converted):
    hf, ours, _ = converted
    assert ours.classes == [f"action_{i}" for i in range(CLASSES)] and ours.num_classes == CLASSES
    assert ours.head.arch["self_attn_blocks"] == 2 and ours.head.arch["num_heads"] == 4
    assert not ours.head.arch["out_proj"] and ours.protocol.frames == FRAMES and ours.protocol.crop == CROP
    video = torch.randn(3, FRAMES, 3, CROP, CROP, generator=torch.Generator().manual_seed(1))  # HF: (B, T, C, H, W)
    clips = video.transpose(1, 2)
    with torch.no_grad():
        reference = hf(video).logits
        error = max_diff(ours(clips), reference)

        no_blocks = copy.deepcopy(ours)
        no_blocks.head.blocks = torch.nn.ModuleList()
        wrong_heads = copy.deepcopy(ours)
        for module in [wrong_heads.head.pool.xattn, *(b.attn for b in wrong_heads.head.blocks)]:
            module.num_heads = 2
        controls = {
            "pooler self-attention layers dropped": max_diff(no_blocks(clips), reference),
            "2 heads instead of 4": max_diff(wrong_heads(clips), reference),
            "softmax instead of logits": max_diff(ours(clips).softmax(-1), reference),
        }
    print(f"\nVJEPA2ForVideoClassification logits max abs diff {error:.2e}; controls {controls}")
    assert error <= TOL, error
    assert all(d > 100 * TOL for d in controls.values()), controls


def test_round_trip_to_hf_classifier(converted, cli):
    hf, ours, tmp_path = converted
    code, out, err = cli("convert", "--to", "hf", tmp_path / "ours", tmp_path / "back")
    assert code == 0, err
    back = transformers.VJEPA2ForVideoClassification.from_pretrained(tmp_path / "back").eval()
    assert back.config.id2label[3] == "action_3" and back.config.num_pooler_layers == 2
    video = torch.randn(2, FRAMES, 3, CROP, CROP, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours_logits = ours(video.transpose(1, 2))
        error = max_diff(back(video).logits, ours_logits)
        original = max_diff(hf(video).logits, ours_logits)
    print(f"\nour probe -> HF -> logits max abs diff {error:.2e} (original HF: {original:.2e})")
    assert error <= TOL and original <= TOL


def test_a_probe_hf_cannot_hold_is_refused(converted, cli):
    from videojepa.classifiers import PROBE_FILE, save_probe
    from videojepa.eval.probes import AttentiveProbe

    _, ours, tmp_path = converted
    card = ours.head.card
    probe = AttentiveProbe(32, CLASSES, 4, 1, 2)  # out_proj: a V-JEPA 1-style probe
    save_probe(probe, tmp_path / "ours" / PROBE_FILE, card.model_copy(update={"arch": probe.arch}))
    code, out, err = cli("convert", "--to", "hf", tmp_path / "ours", tmp_path / "back")
    assert code == 2 and "an output projection after the cross-attention (HF's pooler: none)" in err
    assert not (tmp_path / "back").exists()


def test_the_encoder_path_on_a_classifier_names_counts_and_what_to_do(tmp_path, one_thread):
    """What `convert` printed before it read classifiers: a line of ~10,000 characters naming 167 tensors."""
    from videojepa.errors import UserError
    from videojepa.interop.hf_vjepa2 import from_hf

    tiny_classifier(tmp_path)
    with pytest.raises(UserError) as info:
        from_hf(tmp_path / "hf")
    message = str(info.value)
    print(f"\n{len(message)} characters: {message}")
    assert "\n" not in message and len(message) < 1500
    assert "missing 59:" in message and "and 54 more (encoder.: 36, predictor.: 23)" in message
    assert "unexpected 108:" in message and "and 103 more (vjepa2.: 59, pooler.: 47, classifier.: 2)" in message
    assert "VJEPA2ForVideoClassification" in message and "--from hf" in message


def test_unsupported_architectures_are_named_with_what_to_do(tmp_path, cli, capsys, one_thread):
    config = transformers.Dinov2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_labels=3)
    transformers.Dinov2ForImageClassification(config).save_pretrained(tmp_path / "dino_cls")
    config = transformers.TimesformerConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
    transformers.TimesformerModel(config).save_pretrained(tmp_path / "timesformer")
    capsys.readouterr()  # save_pretrained's progress bars
    code, out, err = cli("convert", "--from", "hf", tmp_path / "dino_cls", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1
    assert "a Hugging Face Dinov2ForImageClassification (model_type 'dinov2')" in err
    assert "its Dinov2Model part converts: save it on its own" in err and "It converts: VJEPA2Model" in err
    code, out, err = cli("convert", "--from", "hf", tmp_path / "timesformer", tmp_path / "out")
    assert code == 2 and "TimesformerModel (model_type 'timesformer')" in err and "does not read it" in err
    code, out, err = cli("convert", "--from", "videomae", tmp_path / "dino_cls", tmp_path / "out")
    assert code == 2 and "Dinov2ForImageClassification (model_type 'dinov2'), not a 'videomae' model" in err
    assert not (tmp_path / "out").exists()
