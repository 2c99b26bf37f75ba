"""SRC of `convert`: a local path, or a Hugging Face Hub model id fetched into the usual Hub cache.

A model already in the cache (HF_HUB_CACHE / HF_HOME, or `cache_dir`) is used without going online; otherwise
`huggingface_hub` downloads config.json, preprocessor_config.json and *.safetensors only (never
pickled `.bin` files).
"""

from __future__ import annotations

import re
from pathlib import Path

from videojepa.errors import UserError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PATTERNS = ["config.json", "preprocessor_config.json", "*.safetensors"]


def resolve_source(src: str | Path, hub: bool, cache_dir: str | Path | None = None) -> Path:
    """`src` as a local path; a Hub model id when the format reads Hub models (`hub`), fetched into the cache."""
    path = Path(src)
    if path.exists():
        return path
    if not hub or not HUB_ID.match(str(src)):
        hint = "" if not hub else " (nor a Hub model id like facebook/vjepa2-vitl-fpc64-256)"
        raise UserError(f"{src}: no such file or folder{hint}")
    return hub_folder(str(src), cache_dir)


def hub_folder(repo_id: str, cache_dir: str | Path | None = None) -> Path:
    """The local snapshot folder of `repo_id`: from the cache if there, else downloaded into it."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        raise UserError(
            f"{repo_id}: fetching Hub models needs huggingface_hub (pip install huggingface_hub), or "
            f"download the folder yourself and give its path"
        ) from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=PATTERNS, cache_dir=cache_dir, local_files_only=True))
    except LocalEntryNotFoundError:  # not cached yet: fetch it below
        pass
    try:
        return Path(snapshot_download(repo_id, allow_patterns=PATTERNS, cache_dir=cache_dir))
    except Exception as err:  # network, authentication, unknown id: all mean "not available", told in one line
        raise UserError(
            f"{repo_id}: not in the Hub cache and could not be downloaded "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        ) from None
