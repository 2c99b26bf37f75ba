"""The encoder card: typed, versioned metadata of encoder files; files of the first format still load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from videojepa.encoder_io import ClipProtocol, EncoderCard, load_encoder, read_card, save_encoder
from videojepa.errors import UserError
from videojepa.models.registry import create_model

FIXTURES = Path(__file__).parent / "fixtures"


# The expected features were computed on another machine: float results differ across CPUs (kernel choice,
# AVX-512 vs AVX2 reductions), thread counts and torch versions. Measured: 0 here (AMD EPYC, AVX-512), 3.6e-7 on an
# Intel Xeon with AVX-512, on features of magnitude ~1.5. The tolerance is ~30x that, and a 1% change of a single
# weight matrix (the negative control below) misses it by far.
FIXTURE_ATOL = 1e-5


def _max_fixture_error(encoder, expected) -> tuple[float, float]:
    with torch.no_grad():
        full = (encoder(expected["clip"]) - expected["features"]).abs().max().item()
        masked = (encoder(expected["clip"], keep=expected["keep"]) - expected["masked"]).abs().max().item()
    return full, masked


def test_format_1_fixture_loads_with_the_same_features():
    # encoder_v1.safetensors was written by save_encoder before the card existed (format videojepa.encoder/1);
    # the expected features were computed by that code at the same time, on another machine.
    expected = load_file(str(FIXTURES / "encoder_v1_expected.safetensors"))
    encoder = load_encoder(FIXTURES / "encoder_v1.safetensors")
    full, masked = _max_fixture_error(encoder, expected)
    assert full <= FIXTURE_ATOL and masked <= FIXTURE_ATOL, (full, masked)


def test_format_1_fixture_tolerance_sees_a_small_weight_change():
    # negative control: the tolerance is tight enough to see a 1% change of one projection
    expected = load_file(str(FIXTURES / "encoder_v1_expected.safetensors"))
    encoder = load_encoder(FIXTURES / "encoder_v1.safetensors")
    with torch.no_grad():
        encoder.blocks[0].attn.proj.weight.mul_(1.01)
    full, masked = _max_fixture_error(encoder, expected)
    assert full > 10 * FIXTURE_ATOL and masked > 10 * FIXTURE_ATOL, (full, masked)


def test_format_1_card_is_read_from_its_dicts():
    card = read_card(FIXTURES / "encoder_v1.safetensors")
    assert card.arch["embed_dim"] == 24 and card.arch["pos_embed"] == "rope" and card.arch["name"] == "vit_pico"
    assert card.clip == ClipProtocol(
        frames=4, frame_step=2, fps=None, crop=16, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
    )
    assert (card.method, card.step, card.source) == ("vjepa", 7, None)


def test_card_round_trip_with_variant_flags_and_source(tmp_path):
    encoder = create_model(
        "vit_pico", patch_size=8, k_bias=False, final_norm=False, norm_eps=1e-12, pos_embed="sincos_1d"
    )
    assert encoder.arch["k_bias"] is False and encoder.arch["final_norm"] is False
    card = EncoderCard.describe(
        encoder,
        clip=ClipProtocol(frames=16, fps=7.5, crop=224, mean=(0.5,) * 3, std=(0.25,) * 3),
        method="videomae",
        source={"format": "videomae", "path": "/x"},
    )
    save_encoder(encoder, tmp_path / "encoder.safetensors", card=card)
    loaded = load_encoder(tmp_path)
    assert loaded.card == card and read_card(tmp_path) == card
    assert loaded.meta["data"]["fps"] == 7.5  # the format-1 view older callers read
    x = torch.randn(1, 3, 4, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), encoder.eval()(x))


def test_default_models_describe_themselves_as_before():
    # variant flags appear in `arch` only when they differ from the defaults: our own files are unchanged
    assert set(create_model("vit_pico").arch) == {
        "embed_dim",
        "depth",
        "num_heads",
        "mlp_hidden",
        "patch_size",
        "tubelet_size",
        "in_chans",
        "pos_embed",
        "qkv_bias",
        "name",
    }


def test_card_refuses_unknown_fields_and_damaged_cards(tmp_path):
    with pytest.raises(ValidationError):
        EncoderCard(arch={}, frames=16)
    encoder = create_model("vit_pico", patch_size=8)
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in encoder.state_dict().items()},
        str(tmp_path / "bad.safetensors"),
        metadata={"format": "videojepa.encoder/2", "card": '{"arch": {}, "colour": "red"}'},
    )
    with pytest.raises(UserError, match="bad.safetensors: damaged encoder card"):
        load_encoder(tmp_path / "bad.safetensors")


def test_trainer_writes_a_card_that_drives_extract_defaults(tmp_path):
    from videojepa.config import load_config
    from videojepa.train.trainer import Trainer

    cfg = load_config(
        "demo/vjepa",
        [
            f"run.dir={tmp_path / 'run'}",
            "model.name=vit_pico",
            "model.patch_size=16",
            "data.frames_per_clip=4",
            "data.crop_size=32",
            "data.frame_step=3",
        ],
    )
    trainer = Trainer(cfg)
    trainer.save()
    card = read_card(tmp_path / "run")
    assert card.clip.frames == 4 and card.clip.crop == 32 and card.clip.frame_step == 3
    assert card.method == cfg.method.name and card.step == 0 and card.arch == trainer.method.export_encoder().arch
