"""Hugging Face VideoMAEForVideoClassification -> our encoder + fine-tuned head, logit for logit.

HF's classifier mean-pools the encoder's tokens, normalises them with `fc_norm` (torch's default eps 1e-5)
and applies a linear layer. Negative controls: fc_norm dropped and softmax instead of logits miss by far; the
encoder's eps (1e-12) in fc_norm misses the tolerance (by ~3x: the residual stream is scaled down so that it shows).
"""

from __future__ import annotations

import copy

import torch
from golden import require_transformers  # noqa: E402

transformers = require_transformers()  # a skip, or under CI (VIDEOJEPA_CI=1) an error

from test_interop_videomae import CROP, FRAMES, randomised, tiny_config  # noqa: E402

from videojepa.classifiers import load_classifier  # noqa: E402

TOL = 1e-5
CLASSES = 6


def test_videomae_classifier_logits_equal_hf_with_negative_controls(cli, tmp_path, one_thread):
    config = tiny_config()
    config.num_labels = CLASSES
    config.id2label = {i: f"class_{i}" for i in range(CLASSES)}
    config.label2id = {v: k for k, v in config.id2label.items()}
    hf = randomised(transformers.VideoMAEForVideoClassification(config), 0)
    with torch.no_grad():
        hf.fc_norm.weight.add_(1.0)  # randomised() leaves fc_norm's weight around 0: a norm with visible scale
        # every write to the residual stream scaled down, so that the pooled features are mostly the mean of the
        # fixed position table, of small variance: the eps fc_norm uses then shows in the logits
        for name, p in hf.videomae.named_parameters():
            if "patch_embeddings" in name or name.split(".")[-2] == "dense" and "intermediate" not in name:
                p.mul_(1e-3)
    hf.save_pretrained(tmp_path / "hf")
    code, out, err = cli("convert", "--from", "hf", tmp_path / "hf", tmp_path / "ours")  # --from videomae as well
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == ["encoder.safetensors", "head.safetensors"]
    model = load_classifier(tmp_path / "ours")
    assert model.classes == [f"class_{i}" for i in range(CLASSES)] and model.head.arch["norm_eps"] == 1e-5
    assert not model.protocol.joint_clips and model.protocol.frames == FRAMES
    video = torch.randn(3, FRAMES, 3, CROP, CROP, generator=torch.Generator().manual_seed(1))
    clips = video.transpose(1, 2)
    with torch.no_grad():
        reference = hf(video).logits
        error = float((model(clips) - reference).abs().max())
        no_norm = copy.deepcopy(model)
        no_norm.head.norm = None
        eps = copy.deepcopy(model)
        eps.head.norm.eps = 1e-12  # the encoder's eps (config.layer_norm_eps), which fc_norm does not use
        controls = {
            "fc_norm dropped": float((no_norm(clips) - reference).abs().max()),
            "softmax instead of logits": float((model(clips).softmax(-1) - reference).abs().max()),
            "fc_norm eps 1e-12": float((eps(clips) - reference).abs().max()),
        }
        # several views of a video: every clip scored alone, logits averaged (a fine-tuned classifier's test)
        views = torch.stack([clips, clips.flip(-1)], dim=1)
        two = model(views)
        expected = (hf(video).logits + hf(video.flip(-1)).logits) / 2
    print(f"\nVideoMAEForVideoClassification logits max abs diff {error:.2e}; controls {controls}")
    assert error <= TOL
    assert controls["fc_norm dropped"] > 100 * TOL and controls["softmax instead of logits"] > 100 * TOL
    assert controls["fc_norm eps 1e-12"] > 2 * TOL  # the wrong eps would fail the parity check above
    assert float((two - expected).abs().max()) <= TOL


def test_a_videomae_classifier_without_mean_pooling_is_refused(cli, tmp_path, one_thread):
    config = tiny_config(mean_pooling=False)
    config.num_labels = 3
    transformers.VideoMAEForVideoClassification(config).save_pretrained(tmp_path / "hf")
    code, out, err = cli("convert", "--from", "videomae", tmp_path / "hf", tmp_path / "ours")
    assert code == 2 and "use_mean_pooling=false" in err and not (tmp_path / "ours").exists()
