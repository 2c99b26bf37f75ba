"""Small pieces against references written here from their definitions (not by calling our own code):
RankMe, stochastic depth (DropPath), the fine-tuning loss; and a fine-tuning run that learns a separable task.
Each test names the bug it catches and has a control showing that bug would miss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

# ------------------------------------------------------------------ RankMe


def rankme_by_hand(singular_values: np.ndarray, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al. 2023, eq. 1): p_k = sigma_k / ||sigma||_1 + eps, RankMe = exp(-sum_k p_k log p_k)."""
    p = singular_values / singular_values.sum() + eps
    return float(np.exp(-(p * np.log(p)).sum()))


def features_with_spectrum(sigma: np.ndarray, tokens: int, seed: int) -> torch.Tensor:
    """A (tokens x channels) matrix whose singular values are exactly `sigma` (random orthonormal bases)."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((tokens, len(sigma))))
    v, _ = np.linalg.qr(rng.standard_normal((len(sigma), len(sigma))))
    return torch.from_numpy((u * sigma) @ v.T).float()


def test_rankme_equals_its_definition_on_features_of_known_spectrum():
    """Hole: a different RankMe formula. The singular values are set by construction, so the reference needs
    no SVD of ours. Measured: relative error <= 2.2e-7 (the fp32 features); 5e-6 relative is asserted."""
    from videojepa.train.monitors import rankme

    spectra = {
        "flat": np.ones(16),
        "decaying": 0.7 ** np.arange(16),
        "two dominant": np.array([10.0, 8.0] + [0.05] * 14),
    }
    for name, sigma in spectra.items():
        z = features_with_spectrum(sigma, tokens=96, seed=len(name))
        expected = rankme_by_hand(sigma)
        assert rankme(z.reshape(2, 48, 16)) == pytest.approx(expected, rel=5e-6), name  # (B, N, D) is flattened
        # the formulas a bug would compute instead all miss by far more
        p = sigma / sigma.sum()
        q = sigma**2 / (sigma**2).sum()
        others = {
            "entropy of squared singular values (covariance eigenvalues)": float(np.exp(-(q * np.log(q + 1e-7)).sum())),
            "entropy without the exp": float(-(p * np.log(p + 1e-7)).sum()),
            "participation ratio": float(sigma.sum() ** 2 / (sigma**2).sum()),
        }
        for other, value in others.items():
            if name == "flat" and other != "entropy without the exp":
                continue  # on a flat spectrum these coincide with RankMe (every measure gives 16)
            assert abs(value - expected) > 1e-2 * expected, (name, other)


def test_rankme_of_collapsed_features():
    from videojepa.train.monitors import rankme

    rank_one = torch.randn(64, 1) @ torch.randn(1, 16)
    assert rankme(rank_one) == pytest.approx(rankme_by_hand(np.array([1.0] + [0.0] * 15)), rel=1e-3)  # ~1
    assert rankme(torch.zeros(64, 16)) == 0.0


# ------------------------------------------------------------------ DropPath


def test_drop_path_scales_kept_samples_by_the_keep_probability_and_is_the_identity_in_eval():
    """Hole: stochastic depth must keep each sample's branch whole with probability 1 - p and divide it by
    1 - p (so the expectation is unchanged); in eval mode it is the identity."""
    from videojepa.models.blocks import DropPath

    p, batch = 0.25, 4000
    x = torch.rand(batch, 3, 5) + 0.5
    drop = DropPath(p)
    torch.manual_seed(0)
    y = drop.train()(x)
    kept = (y != 0).flatten(1)
    assert torch.equal(kept.all(1), kept.any(1))  # a sample is dropped or kept as a whole
    kept = kept.all(1)
    assert torch.allclose(y[kept], x[kept] / (1 - p), rtol=1e-6, atol=0)  # kept samples divided by 1 - p
    keep_rate = kept.double().mean().item()
    assert abs(keep_rate - (1 - p)) < 4 * math.sqrt(p * (1 - p) / batch)  # 4 standard errors
    assert y.mean().item() == pytest.approx(x.mean().item(), rel=0.03)  # unbiased (3% at 4000 samples)
    assert torch.equal(drop.eval()(x), x)
    # control: without the division the mean falls to (1 - p) of it
    assert abs((x * kept[:, None, None]).mean().item() - x.mean().item()) > 0.2 * x.mean().item()


# ------------------------------------------------------------------ fine-tuning


def soft_cross_entropy_by_hand(logits: np.ndarray, target: np.ndarray) -> float:
    """Cross-entropy with soft targets, averaged over the batch: mean_b -sum_c t_bc log softmax(l_b)_c."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-(target * log_softmax).sum(axis=1).mean())


def tiny_finetune(data_dir, run_dir, train_list="motion/train.csv", val_list="motion/val.csv", **extra):
    from test_finetune import tiny

    return tiny(
        data_dir, run_dir, **{"data.train": f"{data_dir}/{train_list}", "data.val": f"{data_dir}/{val_list}", **extra}
    )


def test_the_finetuning_loss_equals_soft_target_cross_entropy(tiny_synth, tmp_path, one_thread):
    """Hole: the fine-tuning loss over the wrong axis. 4 clips x 4 classes, so a softmax over the batch axis
    runs without an error and only its value tells."""
    from test_finetune import make_trainer

    model = make_trainer(tiny_finetune(tiny_synth, tmp_path)).method.eval()
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(4, 3, 8, 32, 32, generator=gen)
    target = torch.softmax(torch.randn(4, model.num_classes, generator=gen) * 2, dim=1)  # mixed, smoothed labels
    assert model.num_classes == 4
    with torch.no_grad():
        loss, _ = model(video, target)
        logits = model.logits(video).double().numpy()
    expected = soft_cross_entropy_by_hand(logits, target.double().numpy())
    wrong_axis = soft_cross_entropy_by_hand(logits.T, target.double().numpy().T)
    # float32 log-softmax against float64: measured 1.2e-7 relative; the wrong axis is 3% off
    assert float(loss) == pytest.approx(expected, rel=3e-6)
    assert abs(wrong_axis - expected) > 1e-3 * expected


def write_separable_task(root, videos_per_class: int = 8, frames: int = 16, size: int = 32, seed: int = 0) -> None:
    """Two classes any encoder can tell apart: a reddish or a bluish square (random size, place, brightness)
    on a noisy grey background. Lists root/colours/{train,val}.csv; half the videos of each class in each."""
    import av

    rng = np.random.default_rng(seed)
    (root / "videos").mkdir(parents=True)
    (root / "colours").mkdir()
    rows = {"train": [], "val": []}
    for i in range(4 * videos_per_class):
        label, split = i % 2, "train" if i < 2 * videos_per_class else "val"
        frame = np.full((size, size, 3), rng.uniform(60, 140))
        side = int(rng.integers(size // 2, size))
        top, left = rng.integers(0, size - side + 1, 2)
        colour = np.array([200.0, 60.0, 60.0]) if label == 0 else np.array([60.0, 60.0, 200.0])
        frame[top : top + side, left : left + side] = colour * rng.uniform(0.8, 1.2)
        path = root / "videos" / f"{i:03d}.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=16)
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
            for _ in range(frames):
                noisy = np.clip(frame + rng.normal(0, 12, frame.shape), 0, 255).astype(np.uint8)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(noisy, format="rgb24")))
            container.mux(stream.encode())
        rows[split].append(f"../videos/{path.name} {label}")
    for split, lines in rows.items():
        (root / "colours" / f"{split}.csv").write_text("\n".join(lines) + "\n")


def test_finetuning_learns_a_separable_task(tmp_path, one_thread):
    """Hole: no test that fine-tuning learns anything. A random-init encoder fine-tuned end to end for 24 steps
    (the recipe's augmentations that change colours off, crops of at least half the frame) separates the
    held-out videos; the loss falls."""
    from test_finetune import losses, make_trainer

    from videojepa.train.logger import read_metrics

    write_separable_task(tmp_path / "data")
    cfg = tiny_finetune(
        tmp_path / "data",
        tmp_path / "run",
        "colours/train.csv",
        "colours/val.csv",
        **{
            "train.steps": 24,
            "train.warmup_steps": 2,
            "train.checkpoint_every": 24,
            "train.log_every": 4,
            "train.lr_base_batch": None,  # lr 1e-3 as given, not per 256 clips
            "data.random_resize_scale": [0.5, 1.0],  # crops that keep some of the square
            "augment.randaugment_n": 0,
            "augment.mixup": 0.0,
            "augment.cutmix": 0.0,
            "augment.erase_prob": 0.0,
            "augment.label_smoothing": 0.0,
        },
    )
    make_trainer(cfg).fit()
    curve = losses(tmp_path / "run")
    val = read_metrics(tmp_path / "run", kind="val")[-1]["val_top1"]
    print(f"\nfine-tuning losses {curve[0]:.3f} -> {curve[-1]:.3f}; held-out top-1 {val}")
    assert np.mean(curve[-4:]) < 0.5 * np.mean(curve[:4]) and val == 1.0
