"""README and presets say what the code does: paths the demo writes, measured masking figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

from videojepa.config import load_config
from videojepa.demo import METHODS, DemoSettings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_example_checkpoints_are_where_the_demo_or_a_preset_writes():
    demo_runs = {f"{DemoSettings.out}/runs/{method}" for method in METHODS}  # `make demo` = `videojepa demo`
    preset_runs = {load_config(f"demo/{method}").run.dir for method in METHODS}  # `videojepa pretrain demo/...`
    texts = {
        "README.md": README,
        "demo/probe.yaml": (ROOT / "videojepa/presets/demo/probe.yaml").read_text(),
        "cli/probe.py": (ROOT / "videojepa/cli/probe.py").read_text(),
    }
    found = {
        (name, path)
        for name, text in texts.items()
        for path in re.findall(r"(?:probe\.checkpoint=|--checkpoint )(runs/[\w/.-]+)", text)
    }
    assert {name for name, _ in found} == set(texts)
    for name, path in found:
        assert path in demo_runs | preset_runs, (name, path)
    assert ("README.md", "runs/demo/runs/vjepa") in found and ("demo/probe.yaml", "runs/demo/runs/vjepa") in found


def test_readme_masking_figures_are_the_measured_ones(cli):
    code, out, _ = cli("masks", "vjepa/vitl16", "--json")  # the command README quotes, with its defaults
    short, long = json.loads(out)["generators"]
    pct = lambda x: f"{100 * x:.0f}%"  # noqa: E731
    text = " ".join(README.split())
    assert (
        f"{pct(short['mask_ratio'])} and {pct(long['mask_ratio'])} of the {short['tokens']} tokens are masked, "
        f"leaving {pct(1 - short['mask_ratio'])} and {pct(1 - long['mask_ratio'])} as context"
    ) in text
    assert (
        f"the encoder receives {short['context_tokens']:.0f} and {long['context_tokens']:.0f} tokens "
        f"({pct(short['context_tokens'] / short['tokens'])} and {pct(long['context_tokens'] / long['tokens'])})"
    ) in text


def test_finetune_examples_point_at_the_demo_runs():
    demo_runs = {f"{DemoSettings.out}/runs/{method}" for method in METHODS}
    texts = {
        "README.md": README,
        "demo/finetune.yaml": (ROOT / "videojepa/presets/demo/finetune.yaml").read_text(),
        "cli/finetune.py": (ROOT / "videojepa/cli/finetune.py").read_text(),
    }
    found = {
        (name, path)
        for name, text in texts.items()
        for path in re.findall(r"finetune\.checkpoint=(runs/[\w/.-]+)", text)
    }
    assert {name for name, _ in found} == set(texts)
    assert all(path in demo_runs for _, path in found), found
