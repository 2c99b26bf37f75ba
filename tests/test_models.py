import pytest
import torch

import videojepa
from videojepa.models import PixelDecoder, Predictor, count_parameters, create_model, list_models
from videojepa.models.pos_embed import Rope3D, apply_rope, sincos_3d, token_coords


@pytest.mark.parametrize("name, expected", [("vit_large", 303e6), ("vit_huge", 632e6), ("vit_giant", 1.01e9)])
def test_parameter_counts_on_meta_device(name, expected):
    assert count_parameters(name) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_builds_and_records_its_architecture(name):
    with torch.device("meta"):
        model = create_model(name)
    assert model.arch["name"] == name and model.arch["embed_dim"] == model.embed_dim


def tiny(pos_embed, **kw):
    torch.manual_seed(0)
    return create_model("vit_pico", patch_size=8, pos_embed=pos_embed, **kw).eval()


CLIP = (2, 3, 4, 32, 32)  # grid 2 x 4 x 4 = 32 tokens


@pytest.mark.parametrize("pos", ["sincos", "rope", "rope_vjepa2"])
def test_keeping_every_token_equals_the_unmasked_forward(pos):
    model, x = tiny(pos), torch.randn(CLIP)
    keep = torch.arange(32).expand(2, -1)
    torch.testing.assert_close(model(x, keep=keep), model(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("pos", ["sincos", "rope", "rope_vjepa2"])
def test_permuting_kept_tokens_permutes_outputs(pos):
    model, x = tiny(pos), torch.randn(CLIP)
    keep = torch.stack([torch.randperm(32)[:12] for _ in range(2)])
    perm = torch.randperm(12)
    out, out_perm = model(x, keep=keep), model(x, keep=keep[:, perm])
    torch.testing.assert_close(out_perm, out[:, perm], rtol=1e-5, atol=1e-5)


def test_masked_forward_uses_the_kept_tokens_positions():
    model, x = tiny("rope"), torch.randn(CLIP)
    a = model(x, keep=torch.tensor([[0, 5, 9]] * 2))
    b = model(x, keep=torch.tensor([[0, 5, 10]] * 2))
    assert not torch.allclose(a[:, :2], b[:, :2])  # another third token changes the others' attention


@pytest.mark.parametrize("pos", ["sincos", "rope"])
def test_gradient_reaches_only_kept_tokens(pos):
    model = tiny(pos)
    x = torch.randn(CLIP, requires_grad=True)
    keep = torch.tensor([[1, 7, 20], [3, 4, 31]])
    model(x, keep=keep).square().sum().backward()
    # grad per token: sum |grad| over each tubelet x patch x patch cell
    per_token = x.grad.abs().unflatten(2, (2, 2)).unflatten(4, (4, 8)).unflatten(6, (4, 8))
    per_token = per_token.sum(dim=(1, 3, 5, 7)).flatten(1)
    for b in range(2):
        expected = torch.zeros(32, dtype=torch.bool)
        expected[keep[b]] = True
        assert torch.equal(per_token[b] > 0, expected)


def test_intermediate_layers_and_images():
    model, x = tiny("rope"), torch.randn(CLIP)
    first, last = model(x, layers=[0, -1])
    torch.testing.assert_close(last, model(x))
    assert first.shape == last.shape and not torch.allclose(first, last)
    image = torch.randn(2, 3, 32, 32)
    still = image.unsqueeze(2).expand(-1, -1, 2, -1, -1)
    torch.testing.assert_close(model(image), model(still))
    with pytest.raises(ValueError, match="not divisible"):
        model(torch.randn(1, 3, 4, 30, 32))
    with pytest.raises(ValueError, match="out of range"):
        model(x, layers=[5])


def test_sincos_gives_each_axis_an_equal_share():
    table = sincos_3d(96, (2, 3, 4))  # 32 channels per axis
    coords = token_coords(torch.arange(24), (2, 3, 4))
    for axis in range(3):
        part = table[:, 32 * axis : 32 * (axis + 1)]
        for value in coords[:, axis].unique():
            rows = part[coords[:, axis] == value]
            assert torch.allclose(rows, rows[0].expand_as(rows))  # depends on this axis only
    assert sincos_3d(100, (2, 3, 4)).shape == (24, 100)


def test_rope_attention_scores_depend_on_relative_position_only():
    rope = Rope3D(head_dim=24)
    q, k = torch.randn(1, 1, 1, 24), torch.randn(1, 1, 1, 24)

    def score(pq, pk):
        cq, sq = rope.tables(torch.tensor([[pq]], dtype=torch.float))
        ck, sk = rope.tables(torch.tensor([[pk]], dtype=torch.float))
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum()

    torch.testing.assert_close(score([1, 2, 3], [0, 0, 1]), score([4, 7, 5], [3, 5, 3]))
    assert not torch.allclose(score([1, 2, 3], [0, 0, 1]), score([1, 2, 3], [0, 1, 1]))
    assert rope.axis_dim == 8  # V-JEPA 2 split: 2 * ((head_dim // 3) // 2) channels per axis


def test_rope_vjepa2_layout_matches_the_released_formula():
    """V-JEPA 2 rotates each axis part x as x * cat(cos f, cos f) + (-x1, x0 interleaved) * cat(sin f, sin f)."""
    head_dim, coords = 20, torch.tensor([[[3.0, 1.0, 2.0]]])
    x = torch.randn(1, 1, 1, head_dim)
    cos, sin = Rope3D(head_dim, vjepa2_layout=True).tables(coords)
    part = 2 * ((head_dim // 3) // 2)
    omega = 1.0 / 10000 ** (torch.arange(part // 2, dtype=torch.float64) / (part / 2))
    pieces = []
    for axis in range(3):
        chunk = x[..., axis * part : (axis + 1) * part].double()
        f = coords[0, 0, axis].double() * omega
        pair = chunk.unflatten(-1, (-1, 2))
        swapped = torch.stack([-pair[..., 1], pair[..., 0]], -1).flatten(-2)
        pieces.append(chunk * torch.cat([f.cos(), f.cos()]) + swapped * torch.cat([f.sin(), f.sin()]))
    pieces.append(x[..., 3 * part :].double())
    torch.testing.assert_close(apply_rope(x, cos, sin), torch.cat(pieces, -1).float())


def test_predictor_outputs_target_width_and_uses_its_mask_token():
    torch.manual_seed(0)
    predictor = Predictor(in_dim=64, out_dim=48, embed_dim=32, depth=2, num_heads=4, num_mask_tokens=2).eval()
    ctx, ctx_ids, tgt_ids = torch.randn(2, 5, 64), torch.tensor([[0, 1, 2, 3, 4]] * 2), torch.tensor([[8, 9]] * 2)
    out0 = predictor(ctx, ctx_ids, tgt_ids, (2, 4, 4), mask_index=0)
    out1 = predictor(ctx, ctx_ids, tgt_ids, (2, 4, 4), mask_index=1)
    assert out0.shape == (2, 2, 48) and not torch.allclose(out0, out1)
    with pytest.raises(ValueError, match="mask tokens"):
        predictor(ctx, ctx_ids, tgt_ids, (2, 4, 4), mask_index=2)


def test_pixel_decoder_predicts_tubelet_pixels():
    decoder = PixelDecoder(in_dim=64, tubelet_size=2, patch_size=8, embed_dim=32, depth=1, num_heads=4)
    out = decoder(torch.randn(1, 3, 64), torch.tensor([[0, 1, 2]]), torch.tensor([[5, 6]]), (2, 4, 4))
    assert out.shape == (1, 2, 2 * 8 * 8 * 3)


def test_public_api():
    assert videojepa.create_model is create_model and "vit_micro" in videojepa.list_models()


def test_tubelet_embedding_equals_the_conv3d():
    model, x = tiny("rope"), torch.randn(CLIP)
    conv = model.patch_embed(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(model.tubelet_embed(x), conv, rtol=1e-5, atol=1e-5)


def test_bf16_attention_path_matches_sdpa():
    from videojepa.models.blocks import attention

    q, k, v = (torch.randn(2, 3, 50, 16) for _ in range(3))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    out = attention(q.bfloat16(), k.bfloat16(), v.bfloat16()).float()
    assert (out - ref).abs().mean() < 5e-3
