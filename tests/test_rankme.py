"""RankMe from the Gram matrix's eigenvalues (float64, clamped): the SVD's value on healthy features, and a
stable answer on the degenerate features it exists to report."""

import math

import pytest
import torch

from videojepa.train.monitors import rankme


def reference(z: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe by its definition (Garrido et al. 2023) from a float64 SVD of the whole matrix."""
    s = torch.linalg.svdvals(z.double().flatten(0, -2))
    p = s / s.sum() + eps
    return math.exp(-(p * p.log()).sum().item())


@pytest.mark.parametrize("shape", [(2, 300, 64), (40, 96), (8, 200)])  # tall, tall, wide (fewer tokens than channels)
def test_healthy_features_give_the_svd_value(shape):
    torch.manual_seed(0)
    z = torch.randn(*shape) @ torch.diag(torch.linspace(0.1, 3, shape[-1]))  # a spread spectrum
    assert rankme(z) == pytest.approx(reference(z), rel=1e-9)
    # and today's float32 SVD value: its rounding (~1e-6 relative) is the only difference
    s = torch.linalg.svdvals(z.float().flatten(0, -2))
    p = s / s.sum() + 1e-7
    assert rankme(z) == pytest.approx(float(torch.exp(-(p * p.log()).sum())), rel=1e-5)


def test_degenerate_features_are_reported_not_failed():
    torch.manual_seed(0)
    u, v = torch.randn(4096, 1), torch.randn(1, 256)
    assert rankme(u @ v) == pytest.approx(1.0, abs=1e-3)  # rank one: a complete collapse
    assert rankme(torch.ones(4096, 256) * 3.0) == pytest.approx(1.0, abs=1e-3)  # every token the same
    three = torch.randn(4096, 3) @ torch.randn(3, 256)
    assert 1.5 < rankme(three) <= 3.0 + 1e-3  # three directions in use
    offset = 1e3 + 1e-3 * torch.randn(4096, 256)  # a huge common mean over tiny variations
    assert math.isfinite(rankme(offset)) and rankme(offset) >= 1.0
    assert rankme(torch.zeros(100, 32)) == 0.0
    assert math.isnan(rankme(torch.full((100, 32), float("nan"))))  # the collapse watch reads NaN as collapsed


def test_negative_control_a_missing_square_root_is_seen():
    """Eigenvalues of the Gram matrix are squared singular values: RankMe of them differs (so the equality
    test above would catch an implementation that forgot the root)."""
    torch.manual_seed(0)
    z = torch.randn(300, 64) @ torch.diag(torch.linspace(0.1, 3, 64))
    lam = torch.linalg.eigvalsh(z.double().T @ z.double())
    p = lam / lam.sum() + 1e-7
    assert abs(math.exp(-(p * p.log()).sum().item()) - reference(z)) > 1.0
