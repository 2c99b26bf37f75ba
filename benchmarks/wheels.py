"""The project's runtime dependencies as wheels, for a machine that cannot download them (a GPU image).

    python3 benchmarks/wheels.py fetch --python 3.12       # here (registries reachable): wheels/cp312-linux_x86_64/
    python3 benchmarks/wheels.py install --wheels DIR --target SITE   # there: what its python3 lacks, into SITE
    python3 benchmarks/wheels.py tag                       # this interpreter's folder name, e.g. cp311-linux_x86_64

`fetch` resolves pyproject.toml's dependencies except torch (which the GPU image brings with its CUDA build)
with `pip download --only-binary=:all:` for the given CPython version and platform, every transitive
dependency included, and writes `manifest.json` (name, version, bytes of each wheel). `install` installs
only what the target interpreter lacks or has at a version the project does not accept, with
`pip install --no-index --find-links DIR --target SITE` (nothing is fetched; torch is never asked for), or,
where the interpreter has no pip, by unpacking every wheel into SITE. Neither installs the project itself:
gpu_check.sh puts the repository on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {"torch"}  # the GPU image's own CUDA build; pip must never try to satisfy it


def requirements() -> list[str]:
    """pyproject.toml's [project] dependencies, torch left out."""
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib

        deps = tomllib.loads(text)["project"]["dependencies"]
    except ImportError:  # Python 3.10: the one array this needs, read directly
        block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M).group(1)
        deps = re.findall(r'"([^"]+)"', block)
    return [d for d in deps if name_of(d) not in SKIPPED]


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def platform_tag() -> str:
    return sysconfig.get_platform().replace("-", "_").replace(".", "_")


def tag(version: str | None = None, platform: str | None = None) -> str:
    version = version or f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"cp{version.replace('.', '')}-{platform or platform_tag()}"


def pip_platforms(platform: str) -> list[str]:
    """pip --platform values for a sysconfig platform: the manylinux tags a recent glibc accepts."""
    match = re.fullmatch(r"linux_(x86_64|aarch64)", platform)
    if not match:
        return [platform]
    arch = match.group(1)
    return [f"manylinux_2_{minor}_{arch}" for minor in (17, 27, 28, 31, 34)] + [f"manylinux2014_{arch}"]


def fetch(version: str, platform: str, dest: Path) -> dict:
    dest.mkdir(parents=True, exist_ok=True)
    reqs = requirements()
    command = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--implementation", "cp"]
    command += ["--python-version", version, "--dest", str(dest), "--disable-pip-version-check", "--quiet"]
    for p in pip_platforms(platform):
        command += ["--platform", p]
    start = time.perf_counter()
    subprocess.run(command + reqs, check=True)
    wheels = []
    for path in sorted(dest.glob("*.whl")):
        name, wheel_version = path.name.split("-")[:2]
        wheels.append({"name": name.lower().replace("_", "-"), "version": wheel_version, "bytes": path.stat().st_size})
    manifest = {
        "python": version,
        "platform": platform,
        "requirements": reqs,
        "wheels": wheels,
        "total_bytes": sum(w["bytes"] for w in wheels),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def missing(reqs: list[str]) -> list[str]:
    """The requirements this interpreter does not satisfy (absent, or a version outside the specifier)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        from pip._vendor.packaging.requirements import Requirement
    out = []
    for text in reqs:
        req = Requirement(text)
        try:
            have = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            out.append(text)
            continue
        if req.specifier and not req.specifier.contains(have, prereleases=True):
            out.append(text)
    return out


def install(wheels: Path, target: Path) -> list[str]:
    need = missing(requirements())
    if not need:
        return []
    target.mkdir(parents=True, exist_ok=True)
    has_pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0
    if has_pip:
        command = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels)]
        command += ["--target", str(target), "--quiet", "--disable-pip-version-check", "--no-warn-script-location"]
        subprocess.run(command + need, check=True)
    else:  # no pip: a wheel is a zip of an importable tree
        for path in wheels.glob("*.whl"):
            with zipfile.ZipFile(path) as archive:
                archive.extractall(target)
    return need


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="download the wheels for a CPython version and platform")
    f.add_argument("--python", default=f"{sys.version_info.major}.{sys.version_info.minor}", help="e.g. 3.12")
    f.add_argument("--platform", default=platform_tag(), help="sysconfig platform, e.g. linux_x86_64")
    f.add_argument("--dest", help="default: wheels/TAG")
    i = sub.add_parser("install", help="install what this interpreter lacks from a wheel folder")
    i.add_argument("--wheels", required=True)
    i.add_argument("--target", required=True)
    sub.add_parser("tag", help="print this interpreter's wheel folder name")
    args = parser.parse_args()
    if args.command == "tag":
        print(tag())
    elif args.command == "fetch":
        dest = Path(args.dest or ROOT / "wheels" / tag(args.python, args.platform))
        manifest = fetch(args.python, args.platform, dest)
        for w in manifest["wheels"]:
            print(f"{w['name']:<20} {w['version']:<12} {w['bytes'] / 2**20:7.2f} MiB")
        print(
            f"{len(manifest['wheels'])} wheels, {manifest['total_bytes'] / 2**20:.1f} MiB in {dest} "
            f"(CPython {args.python}, {args.platform}; {manifest['seconds']} s)"
        )
    else:
        installed = install(Path(args.wheels), Path(args.target))
        done = ", ".join(installed) or "nothing"
        print(f"bootstrap: installed {done} into {args.target} for python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
