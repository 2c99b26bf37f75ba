"""The memory estimator (videojepa/memory.py) against what autograd really saves on CPU.

Measurement: `memory.saved_bytes` counts each storage that `saved_tensors_hooks` sees once, parameters
left out. The estimate models the fused attention kernel accelerators run, so the tests route attention
through `F.scaled_dot_product_attention` (on CPU in bf16 the library picks an explicit softmax for speed,
which would save the seq x seq matrix), and they use CPU autocast's rule for LayerNorm (it runs in the
input's dtype; CUDA's autocast upcasts it to fp32, which the CLI assumes).
"""

import json
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import videojepa.models.blocks as blocks
from videojepa import memory
from videojepa.config import load_config
from videojepa.flops import StepShape
from videojepa.masks import MaskCollator, build_mask_generators, token_grid
from videojepa.methods import build_method
from videojepa.models.blocks import Block
from videojepa.models.pos_embed import Rope3D, token_coords
from videojepa.models.vit import PositionEncoding

TOLERANCE = 0.15


@pytest.fixture
def fused_attention(monkeypatch):
    monkeypatch.setattr(blocks, "attention", F.scaled_dot_product_attention)


def small_config(method, precision, pos_embed, checkpointing, *extra):
    return load_config(
        "demo/" + ("salt_teacher" if method == "salt_teacher" else method),
        [
            f"method.name={method}",
            "model.name=vit_nano",
            "model.patch_size=8",
            "data.crop_size=64",
            "data.frames_per_clip=8",
            "predictor.depth=2",
            "predictor.embed_dim=64",
            "predictor.num_heads=2",
            f"train.precision={precision}",
            "method.teacher.model=vit_nano",
            "method.teacher.checkpoint=null",
            f"model.pos_embed={pos_embed}",
            f"train.activation_checkpointing={checkpointing}",
            *extra,
        ],
    )


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("rope", [False, True])
@pytest.mark.parametrize("dim,heads,length", [(64, 2, 64), (192, 3, 200)])
def test_one_block_saves_what_the_formula_says(fused_attention, one_thread, precision, rope, dim, heads, length):
    torch.manual_seed(0)
    block, batch = Block(dim, heads, 4 * dim), 2
    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    x = torch.randn(batch, length, dim, dtype=dtype, requires_grad=True)  # the residual stream's dtype
    tables = None
    if rope:
        tables = Rope3D(dim // heads).tables(token_coords(torch.arange(length).expand(batch, -1), (1, 8, length // 8)))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        measured = memory.saved_bytes(lambda: block(x, tables), list(block.parameters()))
    c = 4 if precision == "fp32" else 2
    per_token = memory.block_bytes_per_token(dim, heads, 4 * dim, rope, c, device="cpu")
    if rope and c == 4:  # the fp32 tables are saved as they are, once per forward
        per_token += 2 * 4 * (dim // heads)
    if c == 2:  # autocast's bf16 copies of the four weight matrices
        weights = sum(m.weight.numel() for m in block.modules() if isinstance(m, torch.nn.Linear))
        per_token += 2 * weights / (batch * length)
    assert per_token * batch * length == pytest.approx(measured, rel=0.01)
    # the exact terms: 64d + 4h + 16 bytes per token in fp32 (sin-cos), 36d + 4h + 16 on CUDA under autocast
    assert memory.block_bytes_per_token(dim, heads, 4 * dim, False, 4) == 64 * dim + 4 * heads + 16
    assert memory.block_bytes_per_token(dim, heads, 4 * dim, False, 2, "cuda") == 36 * dim + 4 * heads + 16


def measure_method(cfg, batch=2):
    """(bytes autograd keeps for backward in one forward, the step's shape, the built method)."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # salt_student's random-init teacher warning
        method = build_method(cfg).train()
    video = torch.randn(batch, 3, cfg.data.frames_per_clip, cfg.data.crop_size, cfg.data.crop_size)
    masks = MaskCollator(build_mask_generators(cfg), seed=0).sample(batch, 0)
    # checkpointing keeps the (cos, sin) tuple it is handed as a plain Python object, out of the hooks' sight:
    # count those tables too (those of the grad-enabled forwards; a no-grad target's are freed at once)
    tables, rotary = [], PositionEncoding.rotary

    def recording(self, ids, grid):
        out = rotary(self, ids, grid)
        if out is not None and torch.is_grad_enabled() and cfg.train.activation_checkpointing:
            tables.extend(out)
        return out

    PositionEncoding.rotary = recording
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.train.precision == "bf16"):
            saved = memory.saved_bytes(lambda: method(video, masks), list(method.parameters()))
    finally:
        PositionEncoding.rotary = rotary
    saved += sum(t.untyped_storage().nbytes() for t in {t.untyped_storage().data_ptr(): t for t in tables}.values())
    shape = StepShape(batch, math.prod(token_grid(cfg)), [(m.context.shape[1], m.target.shape[1]) for m in masks])
    return saved, shape, method


def estimate(cfg, shape, method):
    c, ac = memory.compute_bytes(cfg), cfg.train.activation_checkpointing
    act = memory.activation_bytes(method.encoder, method.head, shape, c, ac, "cpu", memory.loss_saved_copies(cfg))
    trained = method.modules_with_role("trained")
    copies = 0 if c == 4 else c * sum(memory.linear_weights(n, blocks=not ac) for n in trained)
    return act, act.saved + copies


CASES = [
    ("vjepa", "fp32", "sincos", False),
    ("vjepa", "bf16", "rope", False),
    ("vjepa", "bf16", "rope", True),
    ("salt_teacher", "bf16", "sincos", False),
    ("salt_teacher", "fp32", "sincos", True),
    ("salt_student", "fp32", "rope", True),
]


@pytest.mark.parametrize("method,precision,pos_embed,checkpointing", CASES)
def test_estimate_within_15_percent_of_what_autograd_saves(
    fused_attention, one_thread, method, precision, pos_embed, checkpointing
):
    cfg = small_config(method, precision, pos_embed, checkpointing)
    measured, shape, built = measure_method(cfg)
    act, estimated = estimate(cfg, shape, built)
    assert abs(estimated / measured - 1) <= TOLERANCE, (estimated, measured)
    if checkpointing:  # the backward peak adds one recomputed block: the largest, measured alone
        head, tokens, bf16 = built.head, max(c + t for c, t in shape.lengths), cfg.train.precision == "bf16"
        x = torch.randn(
            shape.batch,
            tokens,
            head.blocks[0].norm1.normalized_shape[0],
            dtype=torch.bfloat16 if bf16 else torch.float32,
            requires_grad=True,
        )
        tables = head.pos.rotary(torch.arange(tokens).expand(shape.batch, -1), token_grid(cfg))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            one = memory.saved_bytes(lambda: head.blocks[0](x, tables), list(head.parameters()))
        if tables is not None and not bf16:  # shared fp32 tables: already counted as checkpoint inputs
            one -= sum(t.untyped_storage().nbytes() for t in tables)
        copies = 2 * memory.linear_weights(head) // len(head.blocks) if bf16 else 0  # counted in the layout
        assert abs((act.recompute + copies) / one - 1) <= TOLERANCE, (act.recompute, one)
        assert act.peak > act.saved


def test_a_formula_that_forgets_the_mlp_falls_outside(fused_attention, one_thread, monkeypatch):
    cfg = small_config("vjepa", "fp32", "sincos", False)
    measured, shape, built = measure_method(cfg)
    right = memory.block_bytes_per_token
    monkeypatch.setattr(
        memory,
        "block_bytes_per_token",
        lambda dim, heads, hidden, rope, c, device="cuda": right(dim, heads, hidden, rope, c, device) - 2 * c * hidden,
    )
    _, estimated = estimate(cfg, shape, built)
    assert abs(estimated / measured - 1) > TOLERANCE


def test_loss_copies_are_the_losses_own():
    assert memory.loss_saved_copies(small_config("vjepa", "fp32", "sincos", False)) == 1  # L1: the difference
    assert memory.loss_saved_copies(small_config("salt_teacher", "fp32", "sincos", False)) == 2  # MSE: both


def test_layout_by_hand():
    cfg = load_config(
        "vjepa/vitl16", ["model.name=vit_pico", "data.crop_size=64", "data.frames_per_clip=8", "train.batch_size=8"]
    )
    report = memory.stage_memory(cfg, world_size=4)
    trained = sum(n["params"] for n in report["networks"] if n["role"] == "trained")
    ema = sum(n["params"] for n in report["networks"] if n["role"] == "ema")
    ddp, fsdp = report["ddp"]["no_checkpointing"], report["fsdp2"]["no_checkpointing"]
    assert report["batch_per_rank"] == 2
    # DDP's buckets are the gradients (gradient_as_bucket_view=True): no second copy is counted
    assert ddp["parameters"] == ddp["gradients"] == 4 * trained and "ddp_gradient_buckets" not in ddp
    assert ddp["adamw_states"] == 8 * trained and ddp["ema"] == 4 * ema
    assert fsdp["parameters"] * 4 == ddp["parameters"] and fsdp["ema"] * 4 == ddp["ema"]
    assert fsdp["fsdp2_unsharded"] > 0 and "ddp_gradient_buckets" not in fsdp
    assert report["ddp"]["checkpointing"]["activations"] < ddp["activations"]
    assert ddp["total"] == pytest.approx(sum(v for k, v in ddp.items() if k not in ("total", "fits")))


def test_frozen_teacher_is_replicated_in_bf16():
    cfg = load_config(
        "salt/vitl16_student",
        [
            "model.name=vit_pico",
            "method.teacher.model=vit_nano",
            "method.teacher.checkpoint=null",
            "train.batch_size=8",
        ],
    )
    report = memory.stage_memory(cfg, world_size=8)
    teacher = next(n for n in report["networks"] if n["role"] == "frozen")
    assert teacher["name"] == "teacher"
    for parallel in ("ddp", "fsdp2"):
        assert report[parallel]["no_checkpointing"]["frozen"] == 2 * teacher["params"]


def test_cli_memory_table_and_json(cli):
    code, out, _ = cli("flops", "vjepa/vitl16", "train.batch_size=192", "--memory", "--world-size", "8")
    assert code == 0
    assert "24 clips per rank" in out and "FSDP2 +AC" in out and "AdamW states" in out and "fits DDP" in out
    code, out, _ = cli("flops", "paper/salt_vitl", "train.batch_size=64", "--memory", "--world-size", "8", "--json")
    report = json.loads(out)
    assert code == 0 and [s["name"] for s in report["stages"]] == ["teacher", "student"]
    student = report["stages"][1]["fsdp2"]["checkpointing"]
    assert set(student["fits"]) == {"24 GB", "40 GB", "80 GB", "141 GB"} and student["frozen"] > 0
    # a card fits when the total does; a ViT-g needs more than the ViT-L at the same batch, and DDP more than FSDP2
    code, out, _ = cli(
        "flops",
        "vjepa/vitl16",
        "model.name=vit_giant",
        "train.batch_size=192",
        "--memory",
        "--world-size",
        "8",
        "--json",
    )
    giant = json.loads(out)["stages"][0]
    code, out, _ = cli("flops", "vjepa/vitl16", "train.batch_size=192", "--memory", "--world-size", "8", "--json")
    large = json.loads(out)["stages"][0]
    ddp = giant["ddp"]["no_checkpointing"]
    assert ddp["fits"] == {f"{gb} GB": ddp["total"] <= gb * 2**30 - 2**30 for gb in (24, 40, 80, 141)}
    assert ddp["total"] > large["ddp"]["no_checkpointing"]["total"] > large["fsdp2"]["no_checkpointing"]["total"]
    assert not ddp["fits"]["24 GB"] and giant["fsdp2"]["checkpointing"]["fits"]["24 GB"]


def test_cli_memory_bad_world_size(cli):
    code, _, err = cli("flops", "vjepa/vitl16", "train.batch_size=12", "--memory", "--world-size", "5")
    assert code == 2 and "train.batch_size=12" in err and "--world-size 5" in err
    code, _, err = cli("flops", "vjepa/vitl16", "--memory", "--world-size", "0")
    assert code == 2 and "--world-size must be at least 1, got 0" in err
    code, _, err = cli("flops", "vjepa/vitl16", "--world-size", "8")
    assert code == 2 and "--world-size only applies with --memory" in err
    code, _, err = cli("flops", "paper/salt_vitl", "--memory", "--budget", "1e21")
    assert code == 2 and "--memory and --budget" in err


def test_memory_names_no_method():
    import re
    from pathlib import Path

    from videojepa.methods import get_method, list_methods

    built_in = [n for n in list_methods() if get_method(n).__module__.startswith("videojepa.methods.")]
    pattern = re.compile(r"\b(" + "|".join(built_in) + r")\b")
    assert len(built_in) >= 4 and pattern.search("method.name=vjepa")
    text = Path(memory.__file__).read_text().splitlines()
    assert not [i for i, line in enumerate(text, 1) if pattern.search(line)]


def test_a_sharded_teacher_is_divided_and_gathered_block_by_block():
    cfg = load_config(
        "salt/vitl16_student",
        [
            "model.name=vit_pico",
            "method.teacher.model=vit_base",
            "method.teacher.checkpoint=null",
            "train.batch_size=8",
        ],
    )
    networks, _, _ = memory.method_networks(cfg)
    teacher = next(n for n in networks if n.role == "frozen")
    replicated = memory.layout(networks, "fsdp2", 8, 2, shard_frozen=False, checkpointing=False)
    sharded = memory.layout(networks, "fsdp2", 8, 2, shard_frozen=True, checkpointing=False)
    assert replicated["frozen"] == 2 * teacher.params and sharded["frozen"] == 2 * teacher.params / 8
    # the ViT-B teacher's blocks are the widest: two gathered in bf16; gradients (bf16 + their fp32 copy) only
    # for the largest trained block; every sharded network's root group in bf16
    block, roots = teacher.largest_block_params, sum(n.root_params for n in networks)
    trained_block = max(n.largest_block_params for n in networks if n.role == "trained")
    assert block > trained_block
    assert sharded["fsdp2_unsharded"] == 2 * roots + 2 * 2 * block + (2 + 4) * trained_block
    assert sharded["fsdp2_unsharded"] > replicated["fsdp2_unsharded"]


def test_a_method_without_architectures_is_refused():
    from videojepa.errors import UserError
    from videojepa.methods.base import Method
    from videojepa.methods.registry import register_method, unregister_method

    class Opaque(Method):
        name = "opaque_for_memory_test"
        networks = {"encoder": "trained"}

        @classmethod
        def flops_components(cls, cfg, shape):
            return []

    register_method(Opaque)
    try:
        cfg = load_config("vjepa/vitl16", ["method.name=opaque_for_memory_test"])
        with pytest.raises(UserError, match="method 'opaque_for_memory_test' declares no meta_networks"):
            memory.stage_memory(cfg)
    finally:
        unregister_method(Opaque.name)


@pytest.mark.parametrize("precision,checkpointing", [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)])
def test_peak_against_pytorchs_memory_tracker(fused_attention, one_thread, precision, checkpointing):
    """The peak model (saved activations + one recomputed block + inputs and targets + autocast's weight copies)
    against the live bytes PyTorch's own MemTracker follows through a trainer-like step: forward under autocast,
    backward after it (parameters and their gradients left out)."""
    from torch.distributed._tools.mem_tracker import MemTracker

    cfg = small_config("vjepa", precision, "sincos", checkpointing)
    torch.manual_seed(0)
    method = build_method(cfg).train()
    method.target_encoder.requires_grad_(True)  # the tracker hooks every parameter it meets; targets stay no-grad
    batch, c = 4, memory.compute_bytes(cfg)
    masks = MaskCollator(build_mask_generators(cfg), seed=0).sample(batch, 0)
    tracker = MemTracker()
    tracker.track_external(method.encoder, method.predictor)
    with tracker:
        video = torch.randn(batch, 3, cfg.data.frames_per_clip, cfg.data.crop_size, cfg.data.crop_size)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = method(video, masks)[0]
        loss.backward()
    peak = {str(k): v for k, v in tracker.get_tracker_snapshot("peak")[torch.device("cpu")].items()}
    live = peak["Total"] - peak["_MemRefType.PARAM"] - peak["_MemRefType.GRAD"]
    shape = StepShape(batch, math.prod(token_grid(cfg)), [(m.context.shape[1], m.target.shape[1]) for m in masks])
    act = memory.activation_bytes(
        method.encoder, method.head, shape, c, checkpointing, "cpu", memory.loss_saved_copies(cfg)
    )
    estimated = act.peak + memory.inputs_and_targets(cfg, method.encoder, method.head, shape)
    if c == 2:  # autocast caches bf16 copies of weights that require grad until the forward's autocast ends
        networks, _, _ = memory.method_networks(cfg)
        estimated += memory.layout(networks, "ddp", 1, c, False, checkpointing)["autocast_weight_copies"]
        estimated += c * memory.linear_weights(method.target_encoder)  # here the target's weights require grad too
    assert abs(estimated / live - 1) <= TOLERANCE, (estimated, live)
