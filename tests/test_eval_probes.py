"""Probes, the multi-clip x multi-view protocol, and probe grids (no video decoding here)."""

import oracles
import pytest
import torch
import torch.nn.functional as F

from videojepa.errors import UserError
from videojepa.eval.grid import ProbeGrid, cosine_factor, fit, grid_cells
from videojepa.eval.probes import AttentiveProbe, CrossAttentionBlock, KNNClassifier, LinearProbe, build_probe
from videojepa.eval.protocol import eval_logits, per_view, training_batch

pytestmark = pytest.mark.usefixtures("one_thread")


def test_attentive_probes_shapes_and_structure():
    x = torch.randn(3, 10, 24)
    v1 = build_probe("attentive", 24, 5, num_heads=12)
    v2 = build_probe("attentive3", 24, 5, num_heads=4, num_queries=2)
    assert v1(x).shape == v2(x).shape == (3, 5)
    assert len(v1.blocks) == 0 and len(v2.blocks) == 3 and v2.head.in_features == 2 * 24
    assert not v1.pooled and LinearProbe.pooled and KNNClassifier.pooled
    assert build_probe("linear", 24, 5)(x.mean(1)).shape == (3, 5)


def test_attentive_probe_is_permutation_invariant_over_tokens():
    torch.manual_seed(0)
    probe, x = AttentiveProbe(16, 3, num_heads=4).eval(), torch.randn(2, 9, 16)
    torch.testing.assert_close(probe(x), probe(x[:, torch.randperm(9)]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("queries", [1, 3])
@pytest.mark.parametrize("shared_queries", [False, True], ids=["per-clip-queries", "batch-shared-queries"])
def test_folded_cross_attention_equals_the_standard_form_in_value_and_gradient(queries, shared_queries):
    torch.manual_seed(0)
    block = CrossAttentionBlock(48, 12, 96).double()
    for p in (block.xattn.kv.bias, block.norm1.weight, block.norm1.bias):  # folded terms: make them non-trivial
        torch.nn.init.normal_(p)
    q = torch.randn(1 if shared_queries else 3, queries, 48, dtype=torch.double)
    x = torch.randn(3, 37, 48, dtype=torch.double)
    outs, grads = [], []
    folded = lambda q, x: block(q, block.normalize(x))  # noqa: E731 - the block takes normalised tokens
    standard = lambda q, x: oracles.cross_attention_block(block, q, x)  # noqa: E731
    for forward, queries_in in ((folded, q), (standard, q.expand(3, -1, -1))):
        block.zero_grad()
        out = forward(queries_in, x)
        out.square().sum().backward()
        outs.append(out)
        grads.append([p.grad.clone() for p in block.parameters()])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-10)
    for folded, standard in zip(*grads):
        torch.testing.assert_close(folded, standard, rtol=1e-9, atol=1e-10)


def test_heads_that_do_not_divide_the_width_are_a_user_error():
    with pytest.raises(
        UserError, match=r"probe.heads=12 does not divide the feature width 64.*allowed: 1, 2, 4, 8, 16"
    ):
        build_probe("attentive", 64, 4, num_heads=12)


def test_knn_votes_for_the_nearest_cluster():
    torch.manual_seed(0)
    centres = torch.randn(3, 8) * 5
    labels = torch.arange(3).repeat_interleave(10)
    bank = centres[labels] + 0.1 * torch.randn(30, 8)
    knn = KNNClassifier(bank, labels, num_classes=3, k=5)
    scores = knn(centres + 0.1 * torch.randn(3, 8))
    assert scores.shape == (3, 3) and torch.equal(scores.argmax(1), torch.arange(3))
    torch.testing.assert_close(scores.sum(1), torch.ones(3))


def test_per_view_concatenates_clips_along_tokens_view_by_view():
    B, K, V, N, D = 2, 2, 3, 4, 5
    # value encodes (video, clip, view): the dataset orders clips clip-major (k * V + v)
    ids = torch.tensor(
        [[b * 100 + k * 10 + v for k in range(K) for v in range(V)] for b in range(B)], dtype=torch.float
    )
    tokens = ids[:, :, None, None].expand(B, K * V, N, D)
    x = per_view(tokens, K, V)
    assert x.shape == (B * V, K * N, D)
    for b in range(B):
        for v in range(V):
            row = x[b * V + v, :, 0]
            assert row.tolist() == [b * 100 + k * 10 + v for k in range(K) for _ in range(N)]
    pooled = per_view(tokens.mean(2), K, V)  # pooled = mean over the concatenated tokens
    torch.testing.assert_close(pooled, x.mean(1))
    with pytest.raises(ValueError, match="2 clips x 2 views"):
        per_view(tokens, 2, 2)


def test_training_batch_has_one_sample_per_view_and_test_averages_view_logits():
    B, K, V, N, D, C = 3, 2, 3, 4, 8, 5
    torch.manual_seed(0)
    feats, labels = torch.randn(B, K * V, N, D), torch.tensor([0, 3, 4])
    x, y = training_batch(feats, labels, K, V)
    assert x.shape == (B * V, K * N, D) and y.tolist() == [0, 0, 0, 3, 3, 3, 4, 4, 4]
    probe = AttentiveProbe(D, C, num_heads=2).eval()
    with torch.no_grad():
        logits = eval_logits(probe, feats, K, V)
        by_view = torch.stack([probe(feats.view(B, K, V, N, D)[:, :, v].reshape(B, K * N, D)) for v in range(V)], 1)
    assert logits.shape == (B, C)
    torch.testing.assert_close(logits, by_view.mean(1))
    grid_logits = eval_logits(lambda z: torch.stack([probe(z), 2 * probe(z)]), feats, K, V)  # leading cell axis
    assert grid_logits.shape == (2, B, C)
    torch.testing.assert_close(grid_logits[1], 2 * logits)


def test_cosine_schedule_has_no_warmup_and_ends_at_zero():
    assert cosine_factor(0, 100) == 1.0 and cosine_factor(50, 100) == pytest.approx(0.5)
    assert cosine_factor(100, 100) == pytest.approx(0.0)


def _train(kind, cells, data, seed=3, steps_per_epoch=4, epochs=3):
    dim, classes = data[0][0].shape[-1], 4
    grid = ProbeGrid(lambda: build_probe(kind, dim, classes, num_heads=4), cells, seed, epochs * steps_per_epoch)
    grid.to(data[0][0].dtype)  # in place: the optimiser keeps the same parameters
    fit(
        grid, epochs, lambda epoch: [(grid.prepare(x), y) for x, y in data[epoch * steps_per_epoch :][:steps_per_epoch]]
    )
    return grid


@pytest.mark.parametrize("kind", ["attentive", "linear"])
def test_grid_of_20_cells_equals_each_cell_trained_alone(kind):
    # float64: the attentive cells score the tokens in one shared matrix product, whose rounding may differ
    # in the last bits from a cell's own product (the linear cells are independent: bit for bit)
    torch.manual_seed(0)
    shape = (6, 7, 16) if kind == "attentive" else (6, 16)
    data = [(torch.randn(*shape, dtype=torch.double), torch.randint(0, 4, (6,))) for _ in range(12)]
    cells = grid_cells([3e-2, 1e-2, 3e-3, 1e-3, 3e-4], [0.0, 0.01, 0.1, 1.0])
    grid = _train(kind, cells, data)
    assert len(grid) == 20
    x_val = torch.randn(5, *shape[1:], dtype=torch.double)
    together = grid.logits(grid.prepare(x_val))
    tol = {"rtol": 1e-10, "atol": 1e-12} if kind == "attentive" else {"rtol": 0, "atol": 0}
    for i, cell in enumerate(cells):
        alone = _train(kind, [cell], data)
        for (name, p), q in zip(grid.probes[i].named_parameters(), alone.probes[0].parameters()):
            torch.testing.assert_close(p, q, **tol, msg=f"cell {cell}: {name} differs")
        torch.testing.assert_close(together[i], alone.logits(alone.prepare(x_val))[0], **tol)
    # the cells really differ: lr and weight decay change the trajectory
    assert not torch.equal(together[0], together[-1]) and not torch.equal(together[0], together[1])


@pytest.mark.parametrize("kind", ["attentive", "attentive3", "linear"])
def test_grid_logits_are_each_cell_probes_own_forward(kind):
    # the grid scores prepared features with all cells together (`classify_many`); each cell is an ordinary
    # probe whose forward on the raw features must give the same logits
    torch.manual_seed(0)
    x = torch.randn(5, 7, 16, dtype=torch.double) if kind != "linear" else torch.randn(5, 16, dtype=torch.double)
    grid = ProbeGrid(lambda: build_probe(kind, 16, 4, num_heads=4), grid_cells([1e-2, 1e-3], [0.0, 0.1]), 0, 4)
    grid.to(torch.double)
    y = torch.randint(0, 4, (5,))
    grid.step(grid.prepare(x), y)  # the cells now differ
    together = grid.logits(grid.prepare(x))
    for cell, probe in zip(together, grid.probes):
        torch.testing.assert_close(cell, probe.eval()(x), rtol=1e-10, atol=1e-12)
    assert not torch.equal(together[0], together[1])
    if kind == "attentive":  # a negative control: unprepared tokens are not what the grid takes
        assert not torch.allclose(grid.logits(x)[0], together[0])


def test_a_grid_of_something_else_than_probes_is_refused():
    with pytest.raises(TypeError, match="a probe grid trains videojepa.eval.probes.Probe modules, got Linear"):
        ProbeGrid(lambda: torch.nn.Linear(4, 2), grid_cells([1e-3], [0.0]), 0, 1)


def test_grid_cells_share_the_initialisation_and_the_optimiser_groups_follow_the_cells():
    grid = ProbeGrid(lambda: build_probe("linear", 8, 3), grid_cells([1e-3, 1e-4], [0.0, 0.5]), seed=1, total_steps=10)
    first = grid.probes[0].head.weight
    assert all(torch.equal(p.head.weight, first) for p in grid.probes)
    decayed = [(g["lr"], g["weight_decay"]) for g in grid.optimizer.param_groups[::2]]
    assert decayed == [(1e-3, 0.0), (1e-3, 0.5), (1e-4, 0.0), (1e-4, 0.5)]
    assert all(g["weight_decay"] == 0.0 for g in grid.optimizer.param_groups[1::2])  # biases: no decay


def test_features_prepared_once_train_the_grid_as_per_batch_preparation_does():
    from videojepa.eval.classification import prepare_features
    from videojepa.eval.features import FeatureSet

    torch.manual_seed(0)
    feats = torch.randn(1, 10, 1, 7, 16).bfloat16()  # (passes, videos, clips, tokens, width), stored in bf16
    make = lambda: ProbeGrid(lambda: build_probe("attentive", 16, 4, num_heads=4), grid_cells([1e-2], [0.1]), 0, 5)  # noqa: E731
    prepared = prepare_features(make(), FeatureSet(feats.clone(), torch.arange(10)[None]))
    assert prepared.features.dtype == torch.float32
    torch.testing.assert_close(prepared.features[0, :, 0], F.layer_norm(feats[0, :, 0].float(), (16,), eps=1e-6))
    once, per_batch = make(), make()
    y = torch.randint(0, 4, (10,))
    for _ in range(3):
        once.step(prepared.features[0, :, 0], y)
        per_batch.step(per_batch.prepare(feats[0, :, 0].float()), y)
    assert all(torch.equal(p, q) for p, q in zip(once.parameters(), per_batch.parameters()))


def test_features_with_nothing_to_prepare_are_left_as_they_are():
    from videojepa.eval.classification import prepare_features
    from videojepa.eval.features import FeatureSet

    feats = FeatureSet(torch.randn(1, 4, 1, 16).bfloat16(), torch.arange(4)[None])
    linear = ProbeGrid(lambda: build_probe("linear", 16, 4), grid_cells([1e-2], [0.1]), 0, 5)
    assert prepare_features(linear, feats) is feats  # no copy of the whole set for a linear probe
