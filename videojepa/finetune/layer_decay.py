"""Layer-wise learning-rate decay (BEiT / VideoMAE, the paper's `layer_decay 0.8`) as AdamW parameter groups.

For a depth-L encoder there are L + 2 layers: 0 = the tubelet embedding (and position tables, if any),
i + 1 = block i, L + 1 = the final norm and the classification head. Layer k trains at
lr * decay^(L + 1 - k): the head at the full lr, the embedding lowest. Weight decay follows V-JEPA's
rule (none on biases, norms and other 1-D tensors).

    groups = layer_decay_groups(model.named_parameters(), depth=12, decay=0.8)
    # [{"params": [...], "lr_scale": 0.8 ** 13, "apply_wd": True, "layer": 0}, ...]
"""

from __future__ import annotations

from torch import nn

ENCODER_PREFIX = "encoder."


def layer_of(name: str, depth: int) -> int:
    """The layer of a parameter named as in a `Classification` (encoder.*, head.*)."""
    if not name.startswith(ENCODER_PREFIX):
        return depth + 1  # the head
    rest = name[len(ENCODER_PREFIX) :]
    if rest.startswith("blocks."):
        return int(rest.split(".")[1]) + 1
    if rest.startswith(("patch_embed.", "pos.")):
        return 0
    return depth + 1  # the final norm: with the head, as in VideoMAE


def decays_weight(name: str, param: nn.Parameter) -> bool:
    return param.ndim >= 2


def layer_decay_groups(named_params, depth: int, decay: float) -> list[dict]:
    """One group per (layer, weight decay or not) that has parameters, each with its `lr_scale`."""
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in named_params:
        if not param.requires_grad:
            continue
        layer, wd = layer_of(name, depth), decays_weight(name, param)
        group = groups.setdefault(
            (layer, wd),
            {"params": [], "names": [], "layer": layer, "apply_wd": wd, "lr_scale": decay ** (depth + 1 - layer)},
        )
        if not wd:
            group["weight_decay"] = 0.0
        group["params"].append(param)
        group["names"].append(name)
    return [groups[key] for key in sorted(groups)]
