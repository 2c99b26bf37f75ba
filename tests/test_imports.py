"""The package's import order (SPEC section 4, README "Layout"): one way, no cycle, checked by import-linter.

`tools/import_graph.py` counts every import of the package's own modules, inside functions too;
`make lint` runs import-linter with the contracts in pyproject.toml.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import import_graph  # noqa: E402

# Why an import may wait until a function runs: start-up time of a command that does not need the module, or a
# dependency that is optional (matplotlib, transformers, huggingface_hub).
REASONS = {"startup", "optional"}


def test_no_cycle_between_rooms_or_modules_counting_imports_inside_functions():
    found = import_graph.report()
    assert found["room_cycles"] == [] and found["module_cycles"] == []


def test_at_most_30_imports_inside_functions_outside_the_cli_each_with_its_reason():
    found = import_graph.report()
    assert found["in_function_imports_outside_cli"] <= 30, found["in_function_by_room"]
    unexplained = [f"{i['source']}:{i['line']}" for i in found["in_function"] if i["reason"] not in REASONS]
    assert not unexplained, f"in-function imports without a '# lazy: {' | '.join(sorted(REASONS))}' reason"


def test_the_counter_sees_cycles_and_in_function_imports(tmp_path):
    """Negative control: a planted in-function import that closes a cycle is counted and found."""
    package = tmp_path / "videojepa"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("def f():\n    from videojepa.high import g\n")
    (package / "high.py").write_text("from videojepa.low import f\n")
    found = import_graph.report(package)
    assert found["in_function_imports_outside_cli"] == 1 and found["in_function"][0]["reason"] is None
    assert found["room_cycles"] == [["high", "low"]]
    assert found["module_cycles"] == [["videojepa.high", "videojepa.low"]]


def lint_imports(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess:
    """import-linter with the project's contracts on the package found in `package_parent`."""
    env = {"PYTHONPATH": str(package_parent), "PATH": str(Path(sys.executable).parent)}
    command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]
    return subprocess.run(
        [*command, "--no-cache", "--no-logo", "--config", str(cwd / "pyproject.toml")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_linter_keeps_the_order_and_refuses_a_planted_upward_import(tmp_path):
    pytest.importorskip("importlinter")
    kept = lint_imports(ROOT, ROOT)
    assert kept.returncode == 0, kept.stdout[-2000:] + kept.stderr[-2000:]
    assert "broken" in kept.stdout and " 0 broken" in kept.stdout
    # the same package with one upward import: the data pipeline reading the trainer's logger
    shutil.copytree(ROOT / "videojepa", tmp_path / "videojepa", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    readers = tmp_path / "videojepa" / "data" / "readers.py"
    readers.write_text(readers.read_text() + "\nfrom videojepa.train.logger import read_metrics  # planted\n")
    broken = lint_imports(tmp_path, tmp_path)
    assert broken.returncode == 1, broken.stdout[-2000:] + broken.stderr[-2000:]
    assert "videojepa.data is not allowed to import videojepa.train" in broken.stdout
    assert "- videojepa.data.readers -> videojepa.train.logger" in broken.stdout
