"""Write the golden fixtures of tests/fixtures/golden/ by RUNNING the reference implementations.

    python tools/golden_fixtures.py --jepa /tmp/jepa --vjepa2 /tmp/vjepa2 [--hf] [--out tests/fixtures/golden]

--jepa / --vjepa2: work trees of github.com/facebookresearch/jepa (V-JEPA 1) and .../vjepa2, e.g.
`git -C MIRROR archive HEAD | tar -x -C /tmp/jepa`. Their modules are imported from there (their `src`
package, one checkout at a time); nothing of theirs is copied here or into the fixtures, which hold
tensors and numbers only. V-JEPA 2's model code imports `einops` (install it) and `timm` (only for
`drop_path`, which these eval-mode, drop-path-free networks never call; timm needs torchvision, so a
stand-in module that refuses any real drop is installed when timm is absent).
--hf: also write the Hugging Face fixtures (transformers' VJEPA2Model and VideoMAEModel, tiny, random).

What is written (safetensors files of tensors, JSON files of numbers):
  input.safetensors: video (B, C, T, H, W); ctx{0,1}, tgt{0,1}: token ids (B, N), ascending; perm{0,1}:
      the same context + target draws, unsorted
  official_vjepa1.safetensors / official_vjepa2.safetensors
      ckpt/{encoder,target_encoder,predictor}/<key>: the state dicts exactly as the official
          `app/vjepa/train.py` saves them (DistributedDataParallel around the multi-mask wrapper:
          `module.backbone.` prefixes; the fixed sin-cos tables included); learned weights are random,
          rounded to fp16 and stored as fp16 (exact), the sin-cos tables as fp32
      out/target_encoder: its full forward; out/target_layer0: its normed block-0 output (`out_layers`);
          out/context{i}: the online encoder (`encoder`) on ctx{i} (masked forward);
          out/predictor{i}: the predictor on (context{i}, ctx{i}, tgt{i}) with mask token i
  official_vjepa1.json / official_vjepa2.json: the tiny config, the checkpoint's non-tensor entries
  official_masks.json: the official multi-block mask sampler's statistics (each family's paper mask config)
  official_schedules.json: the official schedulers' values after k steps, and the EMA momentum generator
      of app/vjepa/train.py (read with `ast` from that file and evaluated, since it is inline code)
  hf_vjepa2/ and hf_videomae_{mean,cls}/: a save_pretrained folder (config.json + model.safetensors,
      fp16) and expected.safetensors (the library's outputs on input.safetensors)

Regenerate only when the tiny configs change: the tests state tolerances measured against these files.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import types
from functools import partial
from pathlib import Path

import torch
from safetensors.torch import save_file

# The tiny networks: a (2, 4, 4) token grid. Encoder head dim 14: RoPE rotates 3 x 4 channels and leaves 2
# (a head dim under 12 trips the official RoPE's squeeze of a size-1 axis); widths 28 and 20 make the
# uniform-power sin-cos table (3 x 10 and 3 x 8 channels) be cut to the width. V-JEPA 1's predictor has the
# encoder's head count, as its init_video_model builds it.
FRAMES, CROP, PATCH, TUBELET, BATCH = 4, 16, 4, 2, 2
ENC = dict(embed_dim=28, depth=2, num_heads=2, mlp_ratio=2.0)
PRED = {"vjepa1": dict(embed_dim=20, depth=2, num_heads=2), "vjepa2": dict(embed_dim=24, depth=2, num_heads=2)}
NUM_MASK_TOKENS = 2
CTX, TGT = 20, 8  # tokens per sample of the two mask pairs, out of 32
SEED = 0


def randomise(module: torch.nn.Module, seed: int) -> None:
    """Every learned parameter random and exactly representable in fp16 (so the fp16 file is exact).
    Fixed tables (requires_grad False: the sin-cos position tables) are left as the code built them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            if p.ndim == 1 or "mask_tokens" in name:
                value = torch.randn(p.shape, generator=gen) * 0.3
                if name.endswith("weight"):  # LayerNorm gains around 1
                    value += 1.0
            else:
                value = torch.randn(p.shape, generator=gen) * (0.8 / p[0].numel() ** 0.5)
            p.copy_(value.half().float())


def fixed_keys(module: torch.nn.Module) -> set[str]:
    return {name for name, p in module.named_parameters() if not p.requires_grad}


def checkpoint_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of `module` as the official train.py saves it: wrapped in DistributedDataParallel."""
    from torch.nn.parallel import DistributedDataParallel

    wrapped = DistributedDataParallel(module)
    fixed = {f"module.{k}" for k in fixed_keys(module)}
    return {k: v.detach().clone().float() if k in fixed else v.detach().half() for k, v in wrapped.state_dict().items()}


def import_official(root: Path):
    """Make `src.*` of the checkout at `root` importable (and forget a previous checkout's)."""
    for name in [n for n in sys.modules if n == "src" or n.startswith("src.") or n == "app" or n.startswith("app.")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p != str(root)]
    sys.path.insert(0, str(root))


def install_timm_stand_in() -> None:
    try:
        import timm.models.layers  # noqa: F401

        return
    except ImportError:
        pass

    def drop_path(x, drop_prob: float = 0.0, training: bool = False):
        if drop_prob == 0.0 or not training:
            return x
        raise NotImplementedError("stand-in for timm's drop_path: these fixtures never drop paths")

    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    layers = types.ModuleType("timm.models.layers")
    layers.drop_path = drop_path
    timm.models, models.layers = models, layers
    sys.modules.update({"timm": timm, "timm.models": models, "timm.models.layers": layers})


def inputs() -> dict[str, torch.Tensor]:
    """The clips every fixture runs on (stored fp16: exact) and two (context, target) pairs of token ids per
    sample: ascending (the official samplers' order) and `perm{i}`, the same draw unsorted (for HF)."""
    gen = torch.Generator().manual_seed(SEED + 100)
    video = torch.randn(BATCH, 3, FRAMES, CROP, CROP, generator=gen).half()
    tokens = (FRAMES // TUBELET) * (CROP // PATCH) ** 2
    out = {"video": video}
    for i in range(2):
        perm = torch.stack([torch.randperm(tokens, generator=gen) for _ in range(BATCH)])
        out[f"perm{i}"] = perm[:, : CTX + TGT].clone()
        out[f"ctx{i}"] = perm[:, :CTX].sort(dim=1).values
        out[f"tgt{i}"] = perm[:, CTX : CTX + TGT].sort(dim=1).values
    return out


def official_networks(family: str, root: Path):
    """(encoder, predictor) wrapped as the official init_video_model wraps them, random weights."""
    import_official(root)
    if family == "vjepa2":
        install_timm_stand_in()
    from src.models.predictor import VisionTransformerPredictor
    from src.models.vision_transformer import VisionTransformer

    norm = partial(torch.nn.LayerNorm, eps=1e-6)
    common = dict(img_size=CROP, patch_size=PATCH, num_frames=FRAMES, tubelet_size=TUBELET, uniform_power=True)
    rope = dict(use_rope=True) if family == "vjepa2" else {}
    encoder = VisionTransformer(**common, **ENC, qkv_bias=True, norm_layer=norm, **rope)
    p = PRED[family]
    predictor = VisionTransformerPredictor(
        **common,
        embed_dim=ENC["embed_dim"],
        predictor_embed_dim=p["embed_dim"],
        depth=p["depth"],
        num_heads=p["num_heads"],
        mlp_ratio=2.0,
        qkv_bias=True,
        norm_layer=norm,
        use_mask_tokens=True,
        num_mask_tokens=NUM_MASK_TOKENS,
        **rope,
    )
    if family == "vjepa1":
        from src.models.utils.multimask import MultiMaskWrapper as Wrap
        from src.models.utils.multimask import PredictorMultiMaskWrapper as PredWrap
    else:
        from src.utils.wrappers import MultiSeqWrapper as Wrap
        from src.utils.wrappers import PredictorMultiSeqWrapper as PredWrap
    return Wrap(encoder), PredWrap(predictor)


def official_family(family: str, root: Path, ins: dict) -> tuple[dict, dict]:
    import copy

    encoder, predictor = official_networks(family, root)
    randomise(encoder, SEED + 1)
    randomise(predictor, SEED + 2)
    target = copy.deepcopy(encoder)  # train.py: target_encoder = copy.deepcopy(encoder), then EMA-updated
    randomise(target, SEED + 3)
    for net in (encoder, target, predictor):
        net.eval()
    tensors = {}
    for which, net in (("encoder", encoder), ("target_encoder", target), ("predictor", predictor)):
        tensors.update({f"ckpt/{which}/{k}": v for k, v in checkpoint_state(net).items()})
    video = ins["video"].float()
    with torch.no_grad():
        tensors["out/target_encoder"] = target.backbone(video)
        target.backbone.out_layers = [0]
        tensors["out/target_layer0"] = target.backbone(video)[0]
        target.backbone.out_layers = None
        for i in range(2):
            ctx, tgt = ins[f"ctx{i}"], ins[f"tgt{i}"]
            context = encoder.backbone(video, masks=[ctx])
            tensors[f"out/context{i}"] = context
            if family == "vjepa1":  # forward(ctxt, tgt, masks_ctxt, masks_tgt, mask_index); tgt unused with tokens
                pred = predictor.backbone(context, None, [ctx], [tgt], mask_index=i)
            else:  # forward(x, masks_x, masks_y, mask_index)
                pred = predictor.backbone(context, [ctx], [tgt], mask_index=i)
            tensors[f"out/predictor{i}"] = pred
    meta = {
        "family": family,
        "frames": FRAMES,
        "crop": CROP,
        "patch_size": PATCH,
        "tubelet_size": TUBELET,
        "encoder": ENC,
        "predictor": {**PRED[family], "num_mask_tokens": NUM_MASK_TOKENS},
        "uniform_power": True,
        "pos": "rope (use_rope=True)" if family == "vjepa2" else "3D sin-cos table",
        # the other entries train.py's save_checkpoint writes (the optimiser state is left empty)
        "checkpoint_extras": {"epoch": 3, "loss": 0.5, "batch_size": 24, "world_size": 8, "lr": 0.000625},
    }
    return {k: v.contiguous() for k, v in tensors.items()}, meta


def mask_statistics(family: str, root: Path, samples: int, batch_size: int, batches: int) -> dict:
    """The official multi-block sampler at the family's paper masks and clip (16 frames; 224 px for V-JEPA,
    256 px for V-JEPA 2), per generator:
      mask_ratio: the fraction of tokens masked per sample, from `samples` calls with a batch of one (where
          nothing is cut, so the target list is the whole mask), and its std over those samples;
      context_tokens / target_tokens: the lengths the official call returns for batches of `batch_size`
          (cut to the batch's shortest), and the std of those per-batch lengths over `batches` calls."""
    import_official(root)
    torch.manual_seed(SEED)  # the block positions come from the global generator
    if family == "vjepa1":
        from src.masks.multiblock3d import _MaskGenerator
    else:
        from src.masks.multiseq_multiblock3d import _MaskGenerator
    crop = 224 if family == "vjepa1" else 256
    out = {"crop": crop, "frames": 16, "patch_size": 16, "tubelet_size": 2, "samples": samples}
    out.update(batch_size=batch_size, batches=batches, generators=[])
    for blocks, scale in ((8, 0.15), (2, 0.7)):  # configs/pretrain/vitl16.yaml, configs/train/vitl16/pretrain-*.yaml
        gen = _MaskGenerator(
            crop_size=crop,
            num_frames=16,
            spatial_patch_size=16,
            temporal_patch_size=2,
            spatial_pred_mask_scale=(scale, scale),
            temporal_pred_mask_scale=(1.0, 1.0),
            aspect_ratio=(0.75, 1.5),
            npred=blocks,
        )
        tokens = gen.duration * gen.height * gen.width
        ratios = [gen(1)[1].shape[1] / tokens for _ in range(samples)]
        lengths = [gen(batch_size) for _ in range(batches)]
        out["generators"].append(
            {
                "num_blocks": blocks,
                "spatial_scale": scale,
                "temporal_scale": 1.0,
                "aspect_ratio": [0.75, 1.5],
                "grid": [gen.duration, gen.height, gen.width],
                **summary("mask_ratio", ratios),
                **summary("context_tokens", [enc.shape[1] for enc, _ in lengths]),
                **summary("target_tokens", [pred.shape[1] for _, pred in lengths]),
            }
        )
    return out


def summary(name: str, values: list[float]) -> dict:
    t = torch.tensor(values, dtype=torch.float64)
    return {name: t.mean().item(), f"{name}_std": t.std().item()}


# the schedules' test config: V-JEPA's recipe shape at 10 epochs of 10 iterations, 2 of them warmup
SCHEDULE = dict(ipe=10, epochs=10, ipe_scale=1.25, warmup_epochs=2, start_lr=2e-4, lr=6.25e-4, final_lr=1e-6)
SCHEDULE.update(weight_decay=0.04, final_weight_decay=0.4, ema=[0.998, 1.0])
WSD = dict(warmup_steps=20, anneal_steps=30, T_max=100, start_lr=1e-4, lr=5.25e-4, final_lr=1e-6)


def stepped(scheduler, calls: int) -> list[float]:
    """The value `step()` returns at its 1st, 2nd, ... call (the official loops call it before each iteration)."""
    return [scheduler.step() for _ in range(calls)]


def momentum_values(root: Path, ema, ipe, num_epochs, ipe_scale) -> list[float]:
    """Every value of the `momentum_scheduler` generator of the checkout's app/vjepa/train.py, in order. It is
    inline code in that file's main(), so its expression is read from the file and evaluated as written."""
    tree = ast.parse((root / "app/vjepa/train.py").read_text())
    found = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "momentum_scheduler" for t in node.targets)
    ]
    if len(found) != 1:
        raise SystemExit(f"{root}/app/vjepa/train.py: expected one momentum_scheduler assignment, found {len(found)}")
    code = compile(ast.Expression(found[0]), str(root / "app/vjepa/train.py"), "eval")
    return list(eval(code, dict(ema=ema, ipe=ipe, num_epochs=num_epochs, ipe_scale=ipe_scale)))


def official_schedules(jepa: Path, vjepa2: Path) -> dict:
    c = SCHEDULE
    warmup = int(c["warmup_epochs"] * c["ipe"])  # app/vjepa/utils.py init_opt
    t_max = int(c["ipe_scale"] * c["epochs"] * c["ipe"])
    calls = t_max
    opt = lambda: torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)  # noqa: E731
    out = {"config": {**c, "warmup_steps": warmup, "T_max": t_max, "iterations": c["ipe"] * c["epochs"]}}
    for family, root in (("vjepa1", jepa), ("vjepa2", vjepa2)):
        import_official(root)
        from src.utils.schedulers import CosineWDSchedule, WarmupCosineSchedule

        values = {
            "lr_warmup_cosine": stepped(
                WarmupCosineSchedule(opt(), warmup, c["start_lr"], c["lr"], t_max, final_lr=c["final_lr"]), calls
            ),
            "wd_cosine": stepped(CosineWDSchedule(opt(), c["weight_decay"], t_max, c["final_weight_decay"]), calls),
            "ema_linear": momentum_values(root, c["ema"], c["ipe"], c["epochs"], c["ipe_scale"]),
        }
        if family == "vjepa2":
            from src.utils.schedulers import LinearDecaySchedule, WSDSchedule

            w = WSD
            values["lr_wsd"] = stepped(
                WSDSchedule(
                    opt(), w["warmup_steps"], w["anneal_steps"], w["T_max"], w["start_lr"], w["lr"], w["final_lr"]
                ),
                w["T_max"],
            )
            values["lr_linear_decay"] = stepped(
                LinearDecaySchedule(opt(), w["lr"], w["T_max"], final_lr=w["final_lr"]), w["T_max"]
            )
            out["wsd_config"] = w
        out[family] = values
    return out


def hf_fixtures(out: Path, ins: dict) -> None:
    """Tiny random transformers models saved with save_pretrained (fp16, exact) and their outputs on the
    shared input (HF's clips are (B, T, C, H, W); its context / target ids: perm0, unsorted)."""
    import transformers

    def rounded(model, seed):
        randomise(model, seed)
        return model.eval()

    video = ins["video"].float().transpose(1, 2)
    tokens = (FRAMES // TUBELET) * (CROP // PATCH) ** 2
    ctx, tgt = ins["perm0"][:, :CTX], ins["perm0"][:, CTX:]

    config = transformers.VJEPA2Config(
        crop_size=CROP,
        frames_per_clip=FRAMES,
        patch_size=PATCH,
        tubelet_size=TUBELET,
        hidden_size=28,
        num_attention_heads=2,
        num_hidden_layers=2,
        mlp_ratio=2.0,
        pred_hidden_size=24,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=2,
        pred_num_mask_tokens=3,
        pred_mlp_ratio=2.0,
    )
    model = rounded(transformers.VJEPA2Model(config), SEED + 4)
    with torch.no_grad():
        gather = lambda x, ids: x.gather(1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # noqa: E731
        h = gather(model.encoder.embeddings(video), ctx)  # HF's own layers on the kept tokens
        for layer in model.encoder.layer:
            h = layer(h, ctx)[0]
        hidden = model(video, skip_predictor=True, output_hidden_states=True).hidden_states
        expected = {
            "encoder": model.get_vision_features(video),
            "masked_encoder": model.encoder.layernorm(h),
            "layer0": model.encoder.layernorm(hidden[len(hidden) - config.num_hidden_layers]),
            "predictor": model(video, context_mask=[ctx], target_mask=[tgt]).predictor_output.last_hidden_state,
        }
    model.half().save_pretrained(out / "hf_vjepa2")
    save_file({k: v.contiguous() for k, v in expected.items()}, str(out / "hf_vjepa2" / "expected.safetensors"))

    for name, mean_pooling in (("mean", True), ("cls", False)):
        config = transformers.VideoMAEConfig(
            image_size=CROP,
            patch_size=PATCH,
            num_frames=FRAMES,
            tubelet_size=TUBELET,
            hidden_size=24,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=48,
            use_mean_pooling=mean_pooling,
        )
        model = rounded(transformers.VideoMAEModel(config), SEED + 5)
        masked = torch.zeros(BATCH, tokens, dtype=torch.bool)
        masked.scatter_(1, tgt, True)  # the same count per sample, as HF requires
        with torch.no_grad():
            expected = {
                "encoder": model(video).last_hidden_state,
                "masked_encoder": model(video, bool_masked_pos=masked).last_hidden_state,
            }
        model.half().save_pretrained(out / f"hf_videomae_{name}")
        save_file(
            {k: v.contiguous() for k, v in expected.items()}, str(out / f"hf_videomae_{name}" / "expected.safetensors")
        )


def init_single_process_group() -> None:
    """DistributedDataParallel (how train.py wraps the networks it saves) needs a process group: one of one."""
    import tempfile

    import torch.distributed as dist

    if not dist.is_initialized():
        store = Path(tempfile.mkdtemp()) / "store"
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jepa", type=Path, required=True, help="a work tree of facebookresearch/jepa")
    parser.add_argument("--vjepa2", type=Path, required=True, help="a work tree of facebookresearch/vjepa2")
    parser.add_argument("--hf", action="store_true", help="also the transformers fixtures")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests/fixtures/golden")
    parser.add_argument("--mask-samples", type=int, default=4000)
    parser.add_argument("--mask-batches", type=int, default=1000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    init_single_process_group()
    ins = inputs()
    save_file(ins, str(args.out / "input.safetensors"))
    for family, root in (("vjepa1", args.jepa), ("vjepa2", args.vjepa2)):
        tensors, meta = official_family(family, root.resolve(), ins)
        save_file(tensors, str(args.out / f"official_{family}.safetensors"))
        (args.out / f"official_{family}.json").write_text(json.dumps(meta, indent=1) + "\n")
    masks = {
        family: mask_statistics(family, root.resolve(), args.mask_samples, 8, args.mask_batches)
        for family, root in (("vjepa1", args.jepa), ("vjepa2", args.vjepa2))
    }
    (args.out / "official_masks.json").write_text(json.dumps(masks, indent=1) + "\n")
    schedules = official_schedules(args.jepa.resolve(), args.vjepa2.resolve())
    (args.out / "official_schedules.json").write_text(json.dumps(schedules) + "\n")
    if args.hf:
        hf_fixtures(args.out, ins)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
