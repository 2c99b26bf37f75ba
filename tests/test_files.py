"""Whole-file writes are atomic: a failure mid-write leaves the old file (or none) and no temporary file."""

from __future__ import annotations

import json
import os

import pytest

import videojepa.utils.files as files


@pytest.fixture
def failing_replace(monkeypatch):
    """Make the final rename fail for files whose name is in `names` (all files when empty)."""
    names: set[str] = set()
    real = os.replace

    def replace(src, dst):
        if not names or os.path.basename(dst) in names:
            raise OSError(f"disk full while writing {dst}")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    return names


def leftovers(folder):
    return sorted(p.name for p in folder.rglob(".*tmp*"))


def test_atomic_write_text_replaces_the_whole_file(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    files.atomic_write_text(path, "first\n")
    files.atomic_write_text(path, "second\n")
    assert path.read_text() == "second\n" and leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, failing_replace):
    path = tmp_path / "a.txt"
    path.write_text("old\n")
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n" and leftovers(tmp_path) == []


def test_a_write_interrupted_inside_the_block_leaves_nothing(tmp_path):
    path = tmp_path / "a.bin"
    with pytest.raises(RuntimeError), files.atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert not path.exists() and leftovers(tmp_path) == []


def test_save_config_is_atomic(tmp_path, failing_replace):
    from videojepa.config import load_config, save_config

    path = tmp_path / "config.yaml"
    path.write_text("previous: run\n")
    with pytest.raises(OSError):
        save_config(load_config("demo/vjepa"), path)
    assert path.read_text() == "previous: run\n" and leftovers(tmp_path) == []


def test_metrics_rewrite_on_resume_is_atomic(tmp_path, failing_replace):
    from videojepa.train.logger import MetricsWriter

    path = tmp_path / "metrics.jsonl"
    original = "".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (1, 2, 3))
    path.write_text(original)
    with pytest.raises(OSError):
        MetricsWriter(path, resume_step=2)
    assert path.read_text() == original and leftovers(tmp_path) == []
    failing_replace.add("other-file")  # the rename works again: records after the checkpoint are dropped
    MetricsWriter(path, resume_step=2).close()
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]


def test_synth_writes_its_summary_last_and_atomically(tmp_path, failing_replace):
    from videojepa.data.synth import write_dataset

    failing_replace.add("synth.json")
    with pytest.raises(OSError):
        write_dataset(str(tmp_path), num_videos=2, frames=2, size=16, workers=1)
    # the lists are complete; synth.json (the demo's "data is there" marker) was never half-written
    assert (tmp_path / "motion" / "classes.txt").read_text().splitlines() == [
        "rotate_cw",
        "rotate_ccw",
        "bounce",
        "oscillate",
    ]
    assert not (tmp_path / "synth.json").exists() and leftovers(tmp_path) == []


def test_atomic_savefig_writes_the_format_of_the_suffix(tmp_path):
    from videojepa.utils.plotting import pyplot

    plt = pyplot()
    fig = plt.figure(figsize=(1, 1))
    files.atomic_savefig(fig, tmp_path / "a.png", dpi=20)
    files.atomic_savefig(fig, tmp_path / "a.pdf")
    plt.close(fig)
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-" and leftovers(tmp_path) == []


def test_tensorboard_is_skipped_only_when_missing(tmp_path, monkeypatch, caplog):
    import logging
    import sys
    import types

    from videojepa.train.logger import MetricsWriter

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # not installed: ImportError
    with caplog.at_level(logging.INFO, logger="videojepa.train"):
        writer = MetricsWriter(tmp_path / "metrics.jsonl", None)
    assert writer.tensorboard is None and "tensorboard package is not installed" in caplog.text
    writer.close()

    def broken_writer(logdir):
        raise PermissionError(13, "Permission denied", logdir)

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=broken_writer))
    with pytest.raises(PermissionError):  # installed but failing: an error, not a silent "no TensorBoard"
        MetricsWriter(tmp_path / "metrics.jsonl", None)
