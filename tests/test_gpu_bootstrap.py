"""The GPU check's bootstrap: which wheels it fetches and which it installs on a bare image."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("wheels", ROOT / "benchmarks" / "wheels.py")
wheels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wheels)


def test_the_requirements_are_pyprojects_without_torch():
    reqs = wheels.requirements()
    names = {wheels.name_of(r) for r in reqs}
    assert "torch" not in names  # the GPU image brings its own CUDA build; pip must never try to fetch one
    assert {"numpy", "av", "pydantic", "pyyaml", "safetensors", "tqdm"} <= names


def test_only_what_the_interpreter_lacks_is_installed():
    assert wheels.missing(["numpy>=1.0", "pyyaml>=1"]) == []  # present in this venv at accepted versions
    assert wheels.missing(["numpy>=999", "no-such-distribution-xyz>=1"]) == [
        "numpy>=999",
        "no-such-distribution-xyz>=1",
    ]


def test_the_folder_is_named_by_interpreter_and_platform():
    assert wheels.tag("3.12", "linux_x86_64") == "cp312-linux_x86_64"
    assert wheels.tag() == f"cp{sys.version_info.major}{sys.version_info.minor}-{wheels.platform_tag()}"
    assert "manylinux_2_28_x86_64" in wheels.pip_platforms("linux_x86_64")  # PyAV 19's wheels need glibc 2.28
