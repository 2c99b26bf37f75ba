"""`videojepa data prepare`: a prepared copy gives the same clips, its manifest is a full scan, bad sources are
skipped, and a killed run continues to the same manifest."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from videojepa.data import DataConfig, build_dataset
from videojepa.data.manifest import Manifest
from videojepa.data.prepare import PrepareSettings, output_size, prepare_dataset
from videojepa.data.readers import PyAVReader
from videojepa.data.synth import decode_index, write_index_video, write_mp4

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
ROOT = Path(__file__).resolve().parents[1]


def shown_indices(video: torch.Tensor) -> np.ndarray:
    x = (video * STD[0] + MEAN[0]).movedim(-4, -1)  # …×T×H×W×C in 0..1
    return decode_index(x.numpy() * 255)


def whole_frame_cfg(**kw) -> DataConfig:
    """Training sampling with a crop that is the whole (square) frame: pixels comparable one to one."""
    base = dict(
        crop_size=32,
        eval_resize_ratio=1.0,
        mean=MEAN,
        std=STD,
        num_workers=0,
        frames_per_clip=6,
        random_resize_scale=(1.0, 1.0),
        random_resize_aspect_ratio=(1.0, 1.0),
        horizontal_flip=False,
    )
    return DataConfig(**{**base, **kw})


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Index-pattern videos at 30 and 24 fps (one with B-frames), a headed CSV with a frame range."""
    root = tmp_path_factory.mktemp("src")
    videos = root / "videos"
    videos.mkdir()
    write_index_video(str(videos / "a.mp4"), 120, 32, 32, fps=30, gop=12)
    write_index_video(str(videos / "b.mp4"), 90, 32, 32, fps=24, gop=10, bframes=2)
    lists = root / "lists"
    lists.mkdir()
    (lists / "train.csv").write_text(
        "path,label,start_frame,end_frame\n../videos/a.mp4,walk,10,100\n../videos/b.mp4,run,,\n"
    )
    return lists / "train.csv"


@pytest.fixture(scope="module")
def prepared(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "prepared"
    info = prepare_dataset(str(sources), str(out), PrepareSettings(fps=12.0), workers=1, progress=False)
    return out, info


def test_prepared_copy_yields_the_same_clips(sources, prepared):
    out, info = prepared
    assert info["videos"] == 2 and not info["bad"]
    listing = out / "lists" / "train.csv"
    assert listing.read_text().splitlines()[0] == "path,label,start_frame,end_frame"  # the source's form
    assert (out / "lists" / "classes.txt").read_text().split() == ["run", "walk"]
    for train in (True, False):
        cfg = whole_frame_cfg(fps=12.0)
        original, copy = build_dataset(str(sources), cfg, train), build_dataset(str(listing), cfg, train)
        assert copy.manifest is not None and original.manifest is None
        assert copy.classes == original.classes == ["run", "walk"]
        for index in range(2):
            for seed in range(5 if train else 1):
                a, b = original[(index, seed, 0)], copy[(index, seed, 0)]
                assert a["label"] == b["label"]
                frames = shown_indices(a["video"][None])[0]
                assert frames.tolist() == shown_indices(b["video"][None])[0].tolist()
                if index == 0:
                    assert frames.min() >= 10 and frames.max() < 100  # the frame range carried over
                # pixels: the re-encode's error only (normalised units; 1/255 of the range = 0.016 here)
                assert (a["video"] - b["video"]).abs().mean() < 0.05
    # negative control: a sampler at another rate than the copy's (5 fps: 2.4 prepared frames per step) does not
    # see the original's frames
    cfg = whole_frame_cfg(fps=5.0)
    copy, original = build_dataset(str(listing), cfg, True), build_dataset(str(sources), cfg, True)
    assert any(
        shown_indices(copy[(1, s, 0)]["video"][None]).tolist()
        != shown_indices(original[(1, s, 0)]["video"][None]).tolist()
        for s in range(3)
    )


def test_manifest_index_equals_a_full_scan(prepared):
    out, _ = prepared
    manifest = Manifest.find(str(out / "lists" / "train.csv"))
    assert len(manifest.records) == 2
    for path, record in manifest.records.items():
        index = manifest.index_for(path)
        with PyAVReader(path) as scanned:  # no index: demuxes every packet
            assert np.array_equal(index.pts, scanned._pts)
            assert np.array_equal(
                np.maximum.accumulate(np.where(index.keyframe, np.arange(index.num_frames), 0)), scanned._key_before
            )
            assert index.fps == 12.0 and scanned.num_frames == record["frames"] == index.num_frames
            assert record["duration"] == pytest.approx(record["frames"] / 12.0)
            assert np.flatnonzero(index.keyframe).tolist() == list(range(0, index.num_frames, 12))  # 1 s GOP
            wanted = [0, 5, 13, index.num_frames - 1]
            with PyAVReader(path, index=index) as fast:
                assert torch.equal(fast.read(wanted), scanned.read(wanted))
    # negative control: a file changed since the manifest was written is not trusted
    path = next(iter(manifest.records))
    data = Path(path).read_bytes()
    try:
        Path(path).write_bytes(data + b"\0")
        assert manifest.index_for(path) is None
    finally:
        Path(path).write_bytes(data)


def test_resize_keeps_aspect_and_even_sides():
    assert output_size(720, 1280, 256) == (256, 456)
    assert output_size(256, 340, 256) == (256, 340)
    assert output_size(100, 60, 256) == (100, 60)  # never upscaled
    assert output_size(1080, 1920, 255) == (256, 454)  # even sides for yuv420p


def test_bad_sources_are_reported_and_skipped(tmp_path, cli):
    src = tmp_path / "src"
    src.mkdir()
    frames = np.random.default_rng(0).integers(0, 255, (40, 32, 48, 3), dtype=np.uint8)
    write_mp4(str(src / "good.mp4"), frames, 20, gop=10)
    data = (src / "good.mp4").read_bytes()
    (src / "cut.mp4").write_bytes(data[: len(data) // 2])  # truncated
    (src / "text.mp4").write_text("not a video")
    (src / "list.txt").write_text("good.mp4 0\ncut.mp4 1\ntext.mp4 1\n")
    before = digest(src)
    code, out, err = cli(
        "data", "prepare", src / "list.txt", tmp_path / "out", "--short-side", "16", "--quiet", "--workers", "2"
    )  # in parallel
    assert code == 0, err
    assert digest(src) == before  # originals untouched
    bad = {line.split(":")[0].split()[-1] for line in out.splitlines() if line.startswith("BAD")}
    assert bad == {"cut.mp4", "text.mp4"}
    assert "prepared 1 videos" in out and "2 bad and skipped" in out and "disk: " in out
    assert (tmp_path / "out" / "list.txt").read_text() == "good.mp4 0\n"
    manifest = json.loads((tmp_path / "out" / "list.manifest.json").read_text())
    assert {b["source"] for b in manifest["bad"]} == {"cut.mp4", "text.mp4"}
    assert manifest["videos"]["good.mp4"]["height"] == 16 and manifest["videos"]["good.mp4"]["width"] == 24
    assert manifest["videos"]["good.mp4"]["frames"] == 40  # no --fps: every frame kept
    # refusals: writing over the sources, changing settings of an earlier run
    code, _, err = cli("data", "prepare", src / "list.txt", src)
    assert code == 2 and "originals are never overwritten" in err
    code, _, err = cli("data", "prepare", src / "list.txt", tmp_path / "out", "--short-side", "32", "--quiet")
    assert code == 2 and "prepared with other settings" in err


def test_prepare_resumes_after_a_kill_to_the_same_manifest(tmp_path):
    src = tmp_path / "src" / "classA"
    src.mkdir(parents=True)
    for i in range(6):
        frames = np.random.default_rng(i).integers(0, 255, (90, 48, 48, 3), dtype=np.uint8)
        write_mp4(str(src / f"{i}.mp4"), frames, 30, gop=30)
    (tmp_path / "src" / "classB").mkdir()
    os.link(src / "0.mp4", tmp_path / "src" / "classB" / "x.mp4")
    command = [
        sys.executable,
        "-m",
        "videojepa",
        "data",
        "prepare",
        str(tmp_path / "src"),
        str(tmp_path / "out"),
        "--fps",
        "10",
        "--workers",
        "1",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "out" / ".prepare.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "out" / "manifest.json").exists()  # it was killed before the end
    done = len(log.read_text().splitlines()) - 1
    assert 2 <= done < 7
    resumed = subprocess.run(command[:-1], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{7 - done} encoded now, {done} from an earlier run" in resumed.stdout
    prepare_dataset(str(tmp_path / "src"), str(tmp_path / "clean"), PrepareSettings(fps=10.0), progress=False)
    assert (tmp_path / "out" / "manifest.json").read_text() == (tmp_path / "clean" / "manifest.json").read_text()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(manifest["videos"]) == ["classA/" + f"{i}.mp4" for i in range(6)] + ["classB/x.mp4"]
    # the prepared folder is a class-per-folder dataset with the same classes, read through its manifest
    ds = build_dataset(str(tmp_path / "out"), DataConfig(crop_size=32, fps=10.0, frames_per_clip=4), train=True)
    assert ds.classes == ["classA", "classB"] and ds.manifest is not None and len(ds) == 7
    assert ds[(6, 0, 0)]["video"].shape == (3, 4, 32, 32) and ds[(6, 0, 0)]["label"] == 1
