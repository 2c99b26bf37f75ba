"""The encoder card: typed, versioned metadata of encoder files; files of the first format still load."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from videojepa.encoder_io import load_encoder

FIXTURES = Path(__file__).parent / "fixtures"


def test_format_1_fixture_loads_with_identical_features():
    # encoder_v1.safetensors was written by save_encoder before the card existed (format videojepa.encoder/1);
    # the expected features were computed by that code at the same time.
    expected = load_file(str(FIXTURES / "encoder_v1_expected.safetensors"))
    encoder = load_encoder(FIXTURES / "encoder_v1.safetensors")
    with torch.no_grad():
        assert torch.equal(encoder(expected["clip"]), expected["features"])
        assert torch.equal(encoder(expected["clip"], keep=expected["keep"]), expected["masked"])
