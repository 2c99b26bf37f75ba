"""Networks with training roles: what the trainer, the parallel wrapper and the accountants know of a model.

A module made of several networks (a pretraining method, the fine-tuning classifier) names each in
`networks` with its role: "trained" (in the optimiser), "ema" (a moving average of a trained network, named in
`ema_of`) or "frozen" (fixed weights). Networks that are not trained stay in eval mode and outside the
optimiser, whatever `train()` is called with.
"""

from __future__ import annotations

from torch import nn

ROLES = ("trained", "ema", "frozen")


class NetworkRoles(nn.Module):
    networks: dict[str, str] = {}  # attribute -> role
    ema_of: dict[str, str] = {}  # EMA network -> the trained network it follows (they must be sharded alike)

    def modules_with_role(self, *roles: str) -> list[nn.Module]:
        return [getattr(self, attr) for attr, role in self.networks.items() if role in roles]

    def frozen_modules(self) -> list[nn.Module]:
        """Networks outside the optimiser (EMA targets and frozen teachers): always in eval mode."""
        return self.modules_with_role("ema", "frozen")

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [
            (f"{attr}.{n}", p)
            for attr, role in self.networks.items()
            if role == "trained"
            for n, p in getattr(self, attr).named_parameters()
            if p.requires_grad
        ]

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self


def check_roles(cls: type, name: str) -> None:
    """Raise TypeError unless `cls.networks` maps attributes to ROLES and `cls.ema_of` pairs an "ema" network with
    the "trained" one it follows."""
    bad = {attr: role for attr, role in cls.networks.items() if role not in ROLES}
    if not cls.networks or bad:
        raise TypeError(f"method {name!r}: `networks` must map attribute names to roles {ROLES}, got {cls.networks}")
    for target, source in cls.ema_of.items():
        if cls.networks.get(target) != "ema" or cls.networks.get(source) != "trained":
            raise TypeError(
                f"method {name!r}: ema_of pairs an 'ema' network with the 'trained' one it follows, "
                f"got {target!r} ({cls.networks.get(target)}) -> {source!r} ({cls.networks.get(source)})"
            )
