"""The package as a user installs it: a wheel (not this editable checkout) whose presets load."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LOAD_EVERY_PRESET = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    # this checkout is not importable: no path entry, and the editable install's import hook is removed
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
    assert not any(Path(p).resolve() == Path(sys.argv[2]) for p in sys.path if p)

    import videojepa
    from videojepa.config.loader import PRESET_DIR, list_presets, load_config
    from videojepa.eval.config import ProbeConfig
    from videojepa.eval.localize_config import LocalizeConfig
    from videojepa.finetune.config import FinetuneConfig

    site = Path(sys.argv[1]).resolve()
    assert Path(videojepa.__file__).resolve().is_relative_to(site), videojepa.__file__
    assert PRESET_DIR.resolve().is_relative_to(site), PRESET_DIR
    names = list_presets()
    for name in names:
        errors = []
        for schema in (None, FinetuneConfig, ProbeConfig, LocalizeConfig):  # a preset is one of these kinds
            try:
                load_config(name) if schema is None else load_config(name, schema=schema)
                break
            except Exception as err:
                errors.append(f"{schema.__name__ if schema else 'PretrainConfig'}: {err}")
        else:
            raise SystemExit(f"preset {name} does not load: " + " | ".join(errors))
    print(len(names))
    """
)


def test_the_wheel_installs_and_every_preset_loads_from_the_installed_copy(tmp_path):
    """Build the wheel from the package's files alone, install it (no dependencies: they are this venv's) into a
    folder, and load every preset in a fresh interpreter that sees that folder and not this checkout."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "videojepa", src / "videojepa", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", str(src), "-w", str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("videojepa-*.whl")
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    presets = sorted(p for p in (ROOT / "videojepa" / "presets").rglob("*.yaml"))
    installed = sorted((tmp_path / "site" / "videojepa" / "presets").rglob("*.yaml"))
    assert [p.name for p in installed] == [p.name for p in presets] and presets
    # -I: no user site, no PYTHONPATH, no current directory; the venv's site-packages stay (torch, pydantic)
    run = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r})\n" + LOAD_EVERY_PRESET,
            str(tmp_path / "site"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert int(run.stdout.split()[-1]) == len(presets)
