"""`videojepa finetune CONFIG [key=value ...]`: fine-tune an encoder end to end on labelled videos."""

from __future__ import annotations

from videojepa.cli.common import add_config_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune an encoder end to end on labelled videos (V-JEPA paper recipe, multi-view test)",
        description="Train an encoder and a classification head end to end with the pretraining trainer (exact "
        "resume, bf16, accumulation, activation checkpointing, torchrun). Key settings: "
        "finetune.checkpoint (pretraining run directory, encoder file, `videojepa convert` folder, or "
        "`none` for a random-init model.name), data.train and data.val (labelled CSV or class-per-"
        "folder tree), run.dir, train.epochs or train.steps, finetune.freeze_encoder. The run "
        "directory receives checkpoints/, best/ and last/ (encoder.safetensors + head.safetensors; "
        "the folder is an encoder for `videojepa probe`/`extract`), results.json and results.md "
        "(top-1/top-5 with one view and with eval.num_segments x eval.num_crops views). Running again "
        "on the same run directory resumes.",
        epilog="example: videojepa finetune demo/finetune finetune.checkpoint=runs/demo/runs/vjepa "
        "run.dir=runs/finetune",
    )
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from videojepa.config.loader import load_config
    from videojepa.finetune import FinetuneConfig, run_finetune
    from videojepa.finetune.report import markdown_table
    from videojepa.train.distributed import end_worker, shutdown_distributed

    cfg = load_config(args.config, args.overrides, schema=FinetuneConfig)
    try:
        results = run_finetune(cfg)
    except BaseException:
        shutdown_distributed(wait_for_all=False)
        raise
    shutdown_distributed()
    if results:
        print(markdown_table(results), end="")
        print(
            f"wrote {cfg.run.dir}/results.json, results.md and the classifiers {cfg.run.dir}/best, {cfg.run.dir}/last"
        )
    end_worker()
    return 0
