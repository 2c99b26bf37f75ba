"""Old code against new code in ONE process, interleaved round by round: does a change make anything slower here?

    python benchmarks/ab_commits.py --before main --out ab.json          # this tree against the `main` commit
    python benchmarks/ab_commits.py --before bf0d027 --rounds 4 --threads 2

Both versions of the package are imported into this process (the older one from `git archive REV`, the newer
one from this working tree) and each keeps its own modules: before every call the side's modules are put back
into sys.modules, so that imports made inside functions find their own side. Two workloads, each with its
default settings and with the same precision on both sides:
- the V-JEPA training step of `bench_train.py --config reference` (ViT-S, 16x112x112, batch 4, predictor
  12 x 384, no feature_reg penalty), `Trainer.train_step` on one fixed batch;
- feature extraction as `bench_extract.py` times it (ViT-S with 3D RoPE, 16x112x112, batch 8,
  `prepare_encoder` + `encode`, the path of `videojepa extract` and the probes).
On a shared CPU contention only adds time and comes and goes: the two sides alternate call by call (which
goes first alternates too), so each pair of calls sees about the same load; the ratio reported is the median
over pairs of after / before (with its quartiles), beside the ratio of the best calls (> 1: the new code is
slower). The JSON keeps every time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = [
    "model.name=vit_small",
    "model.patch_size=16",
    "data.crop_size=112",
    "data.frames_per_clip=16",
    "train.batch_size=4",
    "predictor.depth=12",
    "predictor.embed_dim=384",
    "predictor.num_heads=12",
    "train.grad_clip=1.0",
    "method.feature_reg=0.0",
]


def is_ours(name: str) -> bool:
    return name == "videojepa" or name.startswith("videojepa.")


def import_side(root: Path) -> dict:
    """Import the package found under `root` and return its modules (taken out of sys.modules again)."""
    for name in [n for n in sys.modules if is_ours(n)]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        import videojepa.config  # noqa: F401
        import videojepa.eval.features  # noqa: F401
        import videojepa.masks  # noqa: F401
        import videojepa.models  # noqa: F401
        import videojepa.train.distributed  # noqa: F401
        import videojepa.train.trainer  # noqa: F401
    finally:
        sys.path.remove(str(root))
    modules = {n: m for n, m in sys.modules.items() if is_ours(n)}
    assert Path(modules["videojepa"].__file__).resolve().is_relative_to(root.resolve()), modules["videojepa"]
    for name in modules:
        del sys.modules[name]
    return modules


@contextlib.contextmanager
def on(side: dict):
    for name in [n for n in sys.modules if is_ours(n)]:
        del sys.modules[name]
    sys.modules.update(side)
    yield side
    for name in side:
        sys.modules.pop(name, None)


def train_setting(side: dict, precision: str, run_dir: str):
    """(step function, description) of one side's reference V-JEPA trainer in `precision`."""
    with on(side):
        cfg = side["videojepa.config"].load_config(
            "demo/vjepa", REFERENCE + [f"train.precision={precision}", f"run.dir={run_dir}"]
        )
        torch.manual_seed(0)
        trainer = side["videojepa.train.trainer"].Trainer(cfg, dist_info=side["videojepa.train.distributed"].DistInfo())
        masks_mod = side["videojepa.masks"]
        masks = masks_mod.MaskCollator(masks_mod.build_mask_generators(cfg), seed=0).sample(4, seed=0)
        video = torch.randn(4, 3, 16, 112, 112, generator=torch.Generator().manual_seed(0))
        resolved = trainer.cfg.train.precision
    return (lambda: trainer.train_step(video, masks)), resolved


def extract_setting(side: dict, precision: str, weights: dict):
    with on(side):
        features = side["videojepa.eval.features"]
        model = side["videojepa.models"].create_model("vit_small", patch_size=16, tubelet_size=2, pos_embed="rope")
        model.load_state_dict(weights)
        resolved = precision
        if precision == "auto":
            resolved = side["videojepa.utils.precision"].resolve_precision("auto", "cpu")
        encoder = features.prepare_encoder(model, resolved)
        clips = torch.randn(8, 3, 16, 112, 112, generator=torch.Generator().manual_seed(0))
    return (lambda: features.encode(encoder, clips, precision=resolved)), resolved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="git revision of the old code")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--train-steps", type=int, default=2, help="timed training steps per setting and round")
    parser.add_argument("--extract-calls", type=int, default=3, help="timed forwards per setting and round")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--only", choices=["train", "extract"])
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="videojepa_ab_"))
    old_root = tmp / "before"
    old_root.mkdir()
    revision = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.before], capture_output=True, text=True, check=True
    ).stdout.strip()
    git_archive = ["git", "-C", str(ROOT), "archive", revision, "videojepa"]
    archive = subprocess.run(git_archive, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(old_root)], input=archive.stdout, check=True)
    sides = {"before": import_side(old_root), "after": import_side(ROOT)}
    with on(sides["after"]):
        cpu = sides["after"]["videojepa.utils.precision"]
        choices = cpu.cpu_choices()
    settings = {}  # name -> {side: (fn, resolved precision)}
    if args.only in (None, "train"):
        for precision in ("fp32", "bf16"):
            settings[f"train {precision}"] = {
                side: train_setting(mods, precision, str(tmp / f"{side}_{precision}")) for side, mods in sides.items()
            }
        settings["train default"] = {  # the old default, train.precision bf16, against auto (its choice here)
            "before": settings["train bf16"]["before"],
            "after": settings[f"train {choices['precision']}"]["after"],
        }
    if args.only in (None, "extract"):
        with on(sides["after"]):
            torch.manual_seed(0)
            weights = sides["after"]["videojepa.models"].create_model("vit_small", patch_size=16, pos_embed="rope")
            weights = weights.state_dict()
        for precision in ("fp32", "bf16"):
            settings[f"extract {precision}"] = {
                side: extract_setting(mods, precision, weights) for side, mods in sides.items()
            }
        settings["extract default"] = {  # the old default, --precision fp32, against auto (its choice here)
            "before": settings["extract fp32"]["before"],
            "after": settings[f"extract {choices['precision']}"]["after"],
        }
    calls = {name: (args.train_steps if name.startswith("train") else args.extract_calls) for name in settings}
    # settings shared by two names (a default that resolves to one of the explicit precisions) run once
    distinct = {}
    for name, pair in settings.items():
        key = (id(pair["before"][0]), id(pair["after"][0]))
        distinct.setdefault(key, (name, pair, []))
    for _, pair, _ in distinct.values():  # warm-up
        for side in ("before", "after"):
            with on(sides[side]):
                pair[side][0]()
    for r in range(args.rounds):
        for name, pair, samples in distinct.values():
            for i in range(calls[name]):  # one call of each side in turn: both see the same load
                order = ("before", "after") if (r + i) % 2 == 0 else ("after", "before")
                sample = {}
                for side in order:
                    with on(sides[side]):
                        start = time.perf_counter()
                        pair[side][0]()
                        sample[side] = time.perf_counter() - start
                samples.append(sample)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    rows = {}
    for name, pair in settings.items():
        samples = distinct[(id(pair["before"][0]), id(pair["after"][0]))][2]
        before, after = [x["before"] for x in samples], [x["after"] for x in samples]
        paired = sorted(x["after"] / x["before"] for x in samples)
        quartiles = statistics.quantiles(paired, n=4) if len(paired) > 1 else [paired[0]] * 3
        rows[name] = {
            "precision_before": pair["before"][1],
            "precision_after": pair["after"][1],
            "before_s": before,
            "after_s": after,
            "before_median_s": statistics.median(before),
            "after_median_s": statistics.median(after),
            "after_over_before_paired_median": statistics.median(paired),
            "after_over_before_paired_quartiles": [quartiles[0], quartiles[2]],
            "after_over_before_best": min(after) / min(before),
            "before_range_s": [min(before), max(before)],
            "after_range_s": [min(after), max(after)],
        }
        row = rows[name]
        print(
            f"{name:16} {pair['before'][1]:>5} -> {pair['after'][1]:<5} median {row['before_median_s']:.3f} -> "
            f"{row['after_median_s']:.3f} s; after/before paired median x{row['after_over_before_paired_median']:.3f} "
            f"(quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}), best x{row['after_over_before_best']:.3f}; ranges "
            f"{min(before):.3f}-{max(before):.3f} / {min(after):.3f}-{max(after):.3f} s",
            flush=True,
        )
    doc = {
        "before": revision,
        "after": "working tree",
        "cpu": cpu.cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu_choices": {k: v for k, v in choices.items() if k != "machine"},
        "rounds": args.rounds,
        "results": rows,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
