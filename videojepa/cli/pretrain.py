"""`videojepa pretrain CONFIG [key=value ...]`: train any method; resumes from its run directory."""

from __future__ import annotations

from videojepa.cli.common import add_config_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain an encoder (vjepa, salt_teacher, salt_student, videomae)",
        description="Pretrain an encoder with the config's method. The run directory (run.dir) receives the "
        "resolved config.yaml, metrics.jsonl, train.log, checkpoints/ and encoder.safetensors. "
        "Running again on an existing run directory resumes from its newest checkpoint; a config "
        "that conflicts with the saved one is refused, and so is a directory another launch is training in "
        "(its lock, RUN/.lock, names the holder's host and pid; a killed run's lock goes with it). "
        "data.train is required; data.val is used only "
        "for the health monitors' held-out batch (unset: un-augmented training clips, logged; set but "
        "missing: an error before any work). train.online_probe={train: LIST, val: LIST, every: N} probes the "
        "encoder every N steps on a small labelled pair (top-1 of a linear probe on per-time-step features and of "
        "kNN, with its share of the run's time, in metrics.jsonl, TensorBoard and the log; the training is "
        "unchanged). Launch with torchrun for several processes (rank 0 probes, the others wait).",
    )
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from videojepa.config.loader import load_config
    from videojepa.config.schema import PretrainConfig
    from videojepa.errors import UserError
    from videojepa.train.distributed import end_worker, shutdown_distributed
    from videojepa.train.sources import check_data_sources
    from videojepa.train.trainer import Trainer

    cfg = load_config(args.config, args.overrides)
    if not isinstance(cfg, PretrainConfig):
        raise UserError(f"{args.config} is a plan of several stages; pretrain each stage's config in turn")
    check_data_sources(cfg.data)  # before the run directory exists
    hooks = []
    if cfg.train.online_probe is not None:  # its data read and checked before any training
        from videojepa.eval.online import OnlineProbe

        hooks.append(OnlineProbe(cfg))
    try:
        last = Trainer(cfg, hooks=hooks).fit()
    except BaseException:
        shutdown_distributed(wait_for_all=False)
        raise
    shutdown_distributed()
    print(f"run directory: {cfg.run.dir} (step {last.get('step', '?')}, encoder at {cfg.run.dir}/encoder.safetensors)")
    end_worker()
    return 0
