"""The golden fixtures (tests/fixtures/golden/, written by tools/golden_fixtures.py from the reference code).

Tensors and numbers computed by the official V-JEPA / V-JEPA 2 code and by transformers on another machine:
compare with them at a tolerance measured against them, never bit for bit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


def tensors(name: str) -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / name))


def numbers(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text())


def inputs() -> dict[str, torch.Tensor]:
    """video (B, C, T, H, W) in fp32; ctx{i}/tgt{i} ascending ids; perm{i} the same draws unsorted."""
    out = tensors("input.safetensors")
    out["video"] = out["video"].float()
    return out


def official_checkpoint(family: str, path: Path) -> dict:
    """The golden official checkpoint (`vjepa1` or `vjepa2`) written to `path` as the official train.py does:
    a torch.save'd dict of the three state dicts (fp32, `module.backbone.` keys) and the other entries."""
    stored = tensors(f"official_{family}.safetensors")
    meta = numbers(f"official_{family}.json")
    payload = {
        which: {k.split("/", 2)[2]: v.float() for k, v in stored.items() if k.startswith(f"ckpt/{which}/")}
        for which in ("encoder", "target_encoder", "predictor")
    }
    payload.update(meta["checkpoint_extras"], opt={"state": {}, "param_groups": []}, scaler=None)
    torch.save(payload, path)
    return payload


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def require_transformers():
    """transformers, or a skip; under CI (VIDEOJEPA_CI=1, set by .ci/run) its absence is an error instead."""
    if os.environ.get("VIDEOJEPA_CI"):
        import transformers  # an ImportError here fails the test: CI must run the live parity checks

        return transformers
    return pytest.importorskip("transformers")
