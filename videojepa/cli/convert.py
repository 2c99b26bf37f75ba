"""`videojepa convert --from FORMAT SRC OUT` and `videojepa convert --to FORMAT SRC OUT`: the registered
checkpoint formats (`videojepa.interop.registry`; built in: --from hf, official, videomae, --to hf)."""

from __future__ import annotations

import json

from videojepa.interop.registry import describe, list_sources, list_targets


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="import V-JEPA 2 / V-JEPA / VideoMAE weights (strict, pickle-free), or export to Hugging Face",
        description="--from: convert SRC into the folder OUT (encoder.safetensors with its card, plus "
        "predictor.safetensors when SRC has one); OUT works wherever a run directory does (probe, "
        "extract, method.teacher.checkpoint). --to hf: write SRC (a convert output) as a folder that "
        "transformers' VJEPA2Model.from_pretrained loads. Every source tensor must be used: a missing, "
        "renamed or mis-shaped one is an error naming it. .pt/.pth.tar files are read with "
        "torch.load(weights_only=True): a file that needs more than tensors and plain containers is "
        "refused.",
        epilog=f"sources (--from): {describe('sources')}. Targets (--to): {describe('targets')}. Examples: "
        "videojepa convert --from hf facebook/vjepa2-vitl-fpc64-256 models/vjepa2-vitl | "
        "videojepa convert --from official vitg.pt models/vjepa2-vitg --arch vjepa2_vitg | "
        "videojepa convert --to hf models/vjepa2-vitl hf/vjepa2-vitl",
    )
    direction = p.add_mutually_exclusive_group(required=True)
    direction.add_argument("--from", dest="source", choices=list_sources(), help="the source's format (listed below)")
    direction.add_argument(
        "--to", dest="target", choices=list_targets(), help="export a convert output folder in this format"
    )
    p.add_argument("src", help="source file, folder, or Hugging Face Hub model id (fetched into the Hub cache)")
    p.add_argument("out", help="output folder (must not hold an encoder yet)")
    p.add_argument(
        "--which",
        choices=["target_encoder", "encoder"],
        default="target_encoder",
        help="official only: which network of the checkpoint. Default target_encoder: the EMA encoder, "
        "what the official frozen evaluations load. encoder: the online network, what the official "
        "V-JEPA 2 torch.hub loader loads, and with it the Hugging Face conversions made from it",
    )
    p.add_argument(
        "--arch",
        help="official only: registry name giving the head count, which official files do not "
        "store (e.g. vjepa2_vitg: 22 heads; vit_giant: V-JEPA 1's 16). Default: the "
        "registry entry of the checkpoint's family with its width and depth",
    )
    p.add_argument("--heads", type=int, help="official only: encoder head count (instead of --arch)")
    p.add_argument(
        "--predictor-heads",
        type=int,
        help="official only: predictor head count (default: 12 for V-JEPA 2, the encoder's for V-JEPA 1)",
    )
    p.add_argument(
        "--frames",
        type=int,
        help="official only: frames per clip it was trained with (card; default: "
        "the released value for a known --arch, else unrecorded)",
    )
    p.add_argument("--crop", type=int, help="official only: crop size it was trained with (as --frames)")
    p.set_defaults(func=run)


def run(args) -> int:
    from videojepa.errors import UserError
    from videojepa.interop import convert, export
    from videojepa.interop.registry import get_source

    # the source-specific flags (official's), given on the command line; --which has a default
    options = {
        "which": args.which,
        "arch": args.arch,
        "heads": args.heads,
        "predictor_heads": args.predictor_heads,
        "frames": args.frames,
        "crop": args.crop,
    }
    given = [k for k, v in options.items() if v is not None and not (k == "which" and v == "target_encoder")]
    takes = get_source(args.source).options if args.source else ()
    foreign = [f"--{k.replace('_', '-')}" for k in given if k not in takes]
    if foreign:
        owners = [name for name in list_sources() if set(given) <= set(get_source(name).options)]
        where = f"--from {' or --from '.join(owners)}" if owners else "another format"
        raise UserError(f"{', '.join(foreign)} only apply to {where}")
    if args.target:
        out = export(args.src, args.out, to=args.target)
    else:
        out = convert(args.source, args.src, args.out, **{k: v for k, v in options.items() if k in takes})
    print(json.dumps({"output": str(out), "files": sorted(p.name for p in out.iterdir())}))
    return 0
