import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_python_dash_m_help():
    proc = subprocess.run([sys.executable, "-m", "videojepa", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for command in ("models", "masks", "flops"):
        assert command in proc.stdout


def test_models_lists_parameter_counts(cli):
    code, out, _ = cli("models", "--json")
    rows = {r["name"]: r for r in json.loads(out)["models"]}
    assert code == 0 and rows["vit_large"]["params"] == pytest.approx(303e6, rel=0.01)
    code, out, _ = cli("models")
    assert "vit_micro" in out and "303.9M" in out


@pytest.mark.skipif(not (ROOT / ".venv" / ".videojepa-installed").exists(), reason="not run through `make test`")
def test_second_make_install_does_nothing():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    proc = subprocess.run(["make", "-n", "-C", str(ROOT), "install"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "pip" not in proc.stdout, proc.stdout


def test_overrides_may_follow_flags_and_unknown_flags_are_refused(cli):
    code, before, _ = cli("flops", "demo/vjepa", "train.batch_size=4", "--json")
    code2, after, _ = cli("flops", "demo/vjepa", "--json", "train.batch_size=4")
    assert code == code2 == 0 and json.loads(before) == json.loads(after)
    assert json.loads(after) != json.loads(cli("flops", "demo/vjepa", "--json")[1])  # the override took effect
    with pytest.raises(SystemExit) as exit_info:
        cli("flops", "demo/vjepa", "--bogus")
    assert exit_info.value.code == 2


def test_output_cut_short_by_a_closed_pipe_ends_quietly():
    """`videojepa ... | head`: the reader leaves early; the command ends without a BrokenPipeError traceback."""
    script = (
        "import sys\nimport videojepa.cli.models as models\nfrom videojepa.cli.main import main\n"
        "models.run = lambda args: print('x\\n' * 1_000_000) or 0\nsys.exit(main(['models']))\n"
    )
    proc = subprocess.run(f'{sys.executable} -c "{script}" | head -n 2', shell=True, capture_output=True, text=True)
    assert proc.stdout == "x\nx\n" and proc.stderr == ""
