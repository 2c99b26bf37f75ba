"""Classifiers in and out: `load_classifier`, `videojepa evaluate`, and a pretraining
run that exports its predictor and round-trips through Hugging Face."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_overrides

from videojepa.classifiers import PROBE_FILE, ClassifierProtocol, ProbeCard, load_classifier, save_probe
from videojepa.encoder_io import load_encoder, save_encoder
from videojepa.eval.probes import AttentiveProbe

pytestmark = pytest.mark.usefixtures("one_thread")


def probe_folder(encoder_dir, out, protocol: ClassifierProtocol, classes, seed=0):
    """A classifier folder: the encoder and a probe saved beside it."""
    encoder = load_encoder(encoder_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_encoder(encoder, out / "encoder.safetensors", card=encoder.card)
    torch.manual_seed(seed)
    probe = AttentiveProbe(encoder.embed_dim, len(classes), encoder.num_heads, 1, 1, out_proj=False)
    with torch.no_grad():  # weights of a trained probe's scale (its init's logits are ~0.01)
        for name, p in probe.named_parameters():
            p.copy_(
                torch.randn(p.shape) * (0.5 if p.ndim == 1 else 0.3 / p[0].numel() ** 0.25)
                + name.endswith(("norm1.weight", "norm2.weight"))
            )
    card = ProbeCard(arch=probe.arch, protocol=protocol, classes=classes, source={"format": "test"})
    save_probe(probe, out / PROBE_FILE, card)
    return out


def test_evaluate_reports_what_the_classifier_predicts(pico, tiny_synth, tmp_path, cli):
    """top-1 / top-5 of `videojepa evaluate` against a count made here, clip by clip; labels matched by name."""
    from videojepa.data.build import build_dataset
    from videojepa.data.config import DataConfig

    names = ["d", "c", "b", "a", "f", "e"]  # the classifier's order; the list numbers classes in sorted order
    folder = probe_folder(pico, tmp_path / "cls", ClassifierProtocol(frame_step=2, num_clips=2), names)
    listing = tmp_path / "val.csv"
    lines = (tiny_synth / "motion" / "val.csv").read_text().splitlines()
    videos = [line.split()[0] for line in lines]
    labels = [names[i % 6] for i in range(len(videos))]
    listing.write_text("\n".join(f"{tiny_synth}/motion/{v} {label}" for v, label in zip(videos, labels)) + "\n")
    code, out, err = cli(
        "evaluate", folder, "--data", listing, "--out", tmp_path / "eval", "--workers", "0", "--no-progress"
    )
    assert code == 0, err
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["labels"] == "by name" and results["num_val"] == len(videos) and results["excluded"] == 0
    assert results["protocol"]["num_clips"] == 2 and results["protocol"]["frames_per_clip"] == 4
    model = load_classifier(folder)
    cfg = DataConfig(frames_per_clip=4, frame_step=2, crop_size=32, num_clips=2, num_workers=0)
    dataset = build_dataset(str(listing), cfg, train=False)
    with torch.no_grad():
        logits = torch.cat([model(dataset[i]["video"][None]) for i in range(len(dataset))])
    truth = torch.tensor([names.index(label) for label in labels])
    assert results["top1"] == pytest.approx(float((logits.argmax(-1) == truth).float().mean()))
    top5 = (logits.topk(5, -1).indices == truth[:, None]).any(-1).float().mean()
    assert results["top5"] == pytest.approx(float(top5))
    assert "| top-1 | top-5 |" in (tmp_path / "eval" / "results.md").read_text()
    listing.write_text(f"{tiny_synth}/motion/{videos[0]} zebra\n")
    code, out, err = cli("evaluate", folder, "--data", listing, "--out", tmp_path / "e2", "--workers", "0")
    assert code == 2 and "class names 'zebra' are not among the classifier's 6" in err
    code, out, err = cli("evaluate", tmp_path, "--data", listing)
    assert code == 2 and "neither probe.safetensors nor head.safetensors here" in err


def test_a_finetuned_folder_is_a_classifier(pico, tmp_path):
    from videojepa.finetune.export import load_classifier as load_finetuned
    from videojepa.finetune.export import save_classifier
    from videojepa.finetune.head import ClassifierHead

    encoder = load_encoder(pico)
    torch.manual_seed(1)
    head = ClassifierHead("attentive", 64, 3, heads=2)
    protocol = {"num_clips": 2, "num_views": 3, "joint_clips": False}
    save_classifier(tmp_path / "best", encoder, head, encoder.card, ["x", "y", "z"], {"step": 5, "protocol": protocol})
    model, tuned = load_classifier(tmp_path / "best"), load_finetuned(tmp_path / "best")
    assert model.classes == ["x", "y", "z"] and model.protocol.num_views == 3 and not model.protocol.joint_clips
    views = torch.randn(2, 6, 3, 4, 32, 32)
    with torch.no_grad():
        expected = torch.stack([tuned.logits(views[:, s]) for s in range(6)]).mean(0)  # every clip alone
        assert torch.allclose(model(views), expected, atol=1e-6) and torch.allclose(tuned(views), expected, atol=1e-6)


def test_a_pretraining_run_round_trips_to_hugging_face(tiny_synth, tmp_path, cli, capsys):
    """V-JEPA writes its predictor beside its encoder; with V-JEPA 2's RoPE layout the run exports to a
    VJEPA2Model with the same outputs, and with one of our probes to a VJEPA2ForVideoClassification."""
    from golden import require_transformers

    transformers = require_transformers()
    from videojepa.config import load_config
    from videojepa.encoder_io import load_predictor
    from videojepa.train.trainer import Trainer

    run = tmp_path / "run"
    extra = {"model.pos_embed": "rope_vjepa2", "train.steps": 2, "train.checkpoint_every": 2, "train.log_every": 1}
    Trainer(load_config("demo/vjepa", tiny_overrides(tiny_synth, run, **extra))).fit()
    assert (run / "predictor.safetensors").is_file()
    code, out, err = cli("convert", "--to", "hf", run, tmp_path / "hf")
    assert code == 0, err
    encoder, predictor = load_encoder(run), load_predictor(run)
    assert predictor.source == {"method": "vjepa", "step": 2}
    hf = transformers.VJEPA2Model.from_pretrained(tmp_path / "hf").eval()
    video = torch.randn(2, 8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ctx, tgt = torch.arange(0, 40).expand(2, -1), torch.arange(40, 64).expand(2, -1)
    with torch.no_grad():
        tokens = hf.get_vision_features(video)
        enc_error = float((encoder(video.transpose(1, 2)) - tokens).abs().max())
        hf_pred = hf(video, context_mask=[ctx], target_mask=[tgt]).predictor_output.last_hidden_state
        ours = predictor(tokens[:, :40], ctx, tgt, encoder.grid(8, 32, 32), mask_index=1)  # HF's mask token
        pred_error = float((ours - hf_pred).abs().max())
    assert enc_error <= 1e-5 and pred_error <= 1e-5, (enc_error, pred_error)

    folder = probe_folder(run, tmp_path / "cls", ClassifierProtocol(), [f"c{i}" for i in range(4)])
    (folder / "predictor.safetensors").write_bytes((run / "predictor.safetensors").read_bytes())
    capsys.readouterr()
    code, out, err = cli("convert", "--to", "hf", folder, tmp_path / "hf_cls")
    assert code == 0, err
    back = transformers.VJEPA2ForVideoClassification.from_pretrained(tmp_path / "hf_cls").eval()
    with torch.no_grad():
        cls_error = float((back(video).logits - load_classifier(folder)(video.transpose(1, 2))).abs().max())
    print(f"\nrun -> VJEPA2Model: encoder {enc_error:.2e}, predictor {pred_error:.2e}; our probe -> HF {cls_error:.2e}")
    assert cls_error <= 1e-5


def test_a_probe_run_saves_its_best_probe_and_evaluate_scores_it_the_same(pico, tiny_synth, tmp_path, cli):
    """`videojepa probe` writes the best cell's probe; `videojepa evaluate` of it on the validation list gives
    the top-1 the probe run reported (same encoder, protocol and views)."""
    args = [
        "tasks=[]", f"data.train={tiny_synth}/motion/train.csv", f"data.val={tiny_synth}/motion/val.csv",
        f"probe.checkpoint={pico}", "probe.heads=null", "probe.blocks=1", "data.num_workers=0", "data.num_views=2",
        "data.frames_per_clip=4", "data.crop_size=32",
        "optim.epochs=3", "optim.lr=[1e-2,1e-3]", f"run.dir={tmp_path}/probe", "--quiet",
    ]  # fmt: skip
    code, out, err = cli("probe", "demo/probe", *args)
    assert code == 0, err
    task = json.loads((tmp_path / "probe" / "results.json").read_text())["tasks"][0]
    model = load_classifier(task["probe_file"])
    assert model.protocol.num_views == 2 and model.head.arch["self_attn_blocks"] == 1
    assert model.head.card.source["lr"] == task["best"]["lr"] and model.classes == task["classes"]
    code, out, err = cli(
        "evaluate", task["probe_file"], "--data", f"{tiny_synth}/motion/val.csv", "--out", tmp_path / "eval",
        "--workers", "0", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    evaluated = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert evaluated["top1"] == pytest.approx(task["top1"]) and evaluated["num_val"] == task["num_val"]
    assert evaluated["confusion"] == task["confusion"]
