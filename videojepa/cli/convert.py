"""`videojepa convert --from FORMAT SRC OUT` and `videojepa convert --to FORMAT SRC OUT`: the registered
checkpoint formats (`videojepa.interop.registry`; built in: --from hf, official, official-probe, videomae,
--to hf)."""

from __future__ import annotations

import json

from videojepa.interop.registry import describe, list_sources, list_targets


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="import V-JEPA 2 / V-JEPA / VideoMAE encoders, released classifiers and image models (strict, "
        "pickle-free), or export to Hugging Face",
        description="--from: convert SRC into the folder OUT (encoder.safetensors with its card, plus "
        "predictor.safetensors when SRC has one, and probe.safetensors or head.safetensors when SRC is a "
        "classifier: `videojepa evaluate OUT` and videojepa.load_classifier(OUT) use it); OUT works wherever a "
        "run directory does (probe, extract, method.teacher.checkpoint). --to hf: write SRC (a convert output "
        "or a V-JEPA pretraining run) as a folder that transformers' VJEPA2Model.from_pretrained loads, or "
        "VJEPA2ForVideoClassification when SRC holds a probe. Every source tensor must be used: an error names "
        "the counts of missing, unexpected and mis-shaped tensors with examples, and what the file is when it "
        "is a model this project does not convert. .pt/.pth.tar files are read with "
        "torch.load(weights_only=True): a file that needs more than tensors and plain containers is "
        "refused.",
        epilog=f"sources (--from): {describe('sources')}. Targets (--to): {describe('targets')}. Examples: "
        "videojepa convert --from hf facebook/vjepa2-vitl-fpc64-256 models/vjepa2-vitl | "
        "videojepa convert --from hf facebook/vjepa2-vitl-fpc16-256-ssv2 models/vjepa2-vitl-ssv2 | "
        "videojepa convert --from hf facebook/dinov2-base models/dinov2-base | "
        "videojepa convert --from official vitg.pt models/vjepa2-vitg --arch vjepa2_vitg | "
        "videojepa convert --from official-probe ssv2-vitl-16x2x3.pt models/ssv2-vitl --encoder "
        "models/vjepa2-vitl-official --frames 16 --frame-step 4 --segments 2 --views 3 --crop 256 | "
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
    p.add_argument(
        "--heads",
        type=int,
        help="official: encoder head count (instead of --arch); official-probe: the probe's head count "
        "(default 16, the official evaluation's)",
    )
    p.add_argument(
        "--predictor-heads",
        type=int,
        help="official only: predictor head count (default: 12 for V-JEPA 2, the encoder's for V-JEPA 1)",
    )
    p.add_argument(
        "--frames",
        type=int,
        help="official / official-probe: frames per clip it was trained with (card / probe protocol; default: "
        "the released value for a known --arch, the encoder card's for a probe, else unrecorded)",
    )
    p.add_argument("--crop", type=int, help="official / official-probe: crop size it was trained with (as --frames)")
    probe = p.add_argument_group(
        "official-probe",
        "an official probe file stores neither its encoder nor its clip protocol: the released file names say it "
        "(ssv2-vitl-16x2x3: 16 frames, 2 segments, 3 views); --frames / --crop default to the encoder card's",
    )
    probe.add_argument("--encoder", help="the encoder it was trained on: a `videojepa convert` output or encoder file")
    probe.add_argument("--classifier", type=int, default=0, help="which probe of the file's list (default 0)")
    probe.add_argument("--frame-step", type=int, help="take every k-th frame (default: the encoder card's)")
    probe.add_argument("--segments", type=int, default=1, help="clips per video, concatenated (default 1)")
    probe.add_argument("--views", type=int, default=1, help="spatial views per clip, softmax averaged (default 1)")
    p.set_defaults(func=run)


# the source-specific flags (a source names those it takes: `CheckpointSource.options`); a flag is given when it
# is set and differs from its default
OPTIONS = ("which", "arch", "heads", "predictor_heads", "frames", "crop")
OPTIONS += ("encoder", "classifier", "frame_step", "segments", "views")
DEFAULTS = {"which": "target_encoder", "classifier": 0, "segments": 1, "views": 1}


def run(args) -> int:
    from videojepa.errors import UserError
    from videojepa.interop import convert, export
    from videojepa.interop.registry import get_source

    given = {k for k in OPTIONS if getattr(args, k) is not None and getattr(args, k) != DEFAULTS.get(k)}
    takes = get_source(args.source).options if args.source else ()
    foreign = sorted(given - set(takes))
    if foreign:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in foreign)
        owners = [name for name in list_sources() if set(foreign) <= set(get_source(name).options)]
        where = f"--from {' or --from '.join(owners)}" if owners else "another format"
        raise UserError(f"{flags} only apply to {where}")
    if args.target:
        out = export(args.src, args.out, to=args.target)
    else:
        out = convert(args.source, args.src, args.out, **{k: getattr(args, k) for k in takes})
    print(json.dumps({"output": str(out), "files": sorted(p.name for p in out.iterdir())}))
    return 0
