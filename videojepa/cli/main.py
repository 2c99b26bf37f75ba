"""The `videojepa` command line: one entry point, one module per sub-command.

Each sub-command module exposes `register(subparsers)`, which adds its parser and sets
`func` to a callable taking the parsed arguments and returning an exit code.
Configuration and input errors (`videojepa.errors.UserError`) become a one-line
message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from videojepa.errors import UserError

# Sub-command modules, in the order `--help` lists them.
COMMANDS = [
    "demo",
    "data",
    "pretrain",
    "finetune",
    "probe",
    "localize",
    "evaluate",
    "extract",
    "convert",
    "models",
    "config",
    "masks",
    "flops",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videojepa",
        description="Self-supervised video representation learning (V-JEPA, SALT) on CPU or GPU.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"videojepa.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # argparse stops filling a positional list at the first option, so `key=value` overrides written after
    # a flag come back unparsed; they are still overrides, in the order given.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"videojepa {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `videojepa ... | head` closed the pipe: what it wanted was printed
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0


if __name__ == "__main__":
    sys.exit(main())
