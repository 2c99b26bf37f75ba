"""Bad input never crashes a run and is never silently dropped."""

import warnings

import av
import numpy as np
import pytest

from videojepa.data import BadInputWarning, DataConfig, TooManyBadFilesError, build_dataset, build_loader
from videojepa.data.synth import index_pattern, write_index_video, write_mp4

CFG = dict(crop_size=32, eval_resize_ratio=1.0, num_workers=0, frames_per_clip=4, frame_step=2, short_video="skip")


def faststart_mp4(path, frames=40):
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=30)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for frame in index_pattern(frames, 32, 32):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def plant_bad_files(root) -> dict:
    """One file of every bad kind; returns {file name: words its warning must contain}."""
    write_mp4(str(root / "ref.mp4"), index_pattern(24, 32, 32), 30)
    data = (root / "ref.mp4").read_bytes()
    (root / "ref.mp4").unlink()
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("not a video\n" * 100)
    (root / "noise.avi").write_bytes(np.random.default_rng(0).bytes(5000))
    (root / "cut.mp4").write_bytes(data[: len(data) // 2])
    faststart_mp4(root / "front.mp4")
    front = (root / "front.mp4").read_bytes()
    (root / "front.mp4").write_bytes(front[: len(front) // 2])
    tag = data.find(b"avc1", data.find(b"stsd"))
    (root / "codec.mp4").write_bytes(data[:tag] + b"zzzz" + data[tag + 4 :])
    write_index_video(str(root / "short.mp4"), 3, 32, 32)
    return {
        "missing.mp4": "file not found",
        "empty.mp4": "empty file",
        "text.mp4": "not a readable media file",
        "noise.avi": "not a readable media file",
        "cut.mp4": "not a readable media file",
        "front.mp4": "truncated",
        "codec.mp4": "unsupported codec",
        "short.mp4": "too short: 3 frames, a clip spans 7",
    }


def make_list(root, num_good, bad_names):
    for i in range(num_good):
        write_index_video(str(root / f"good{i}.mp4"), 24, 32, 32)
    names = [f"good{i}.mp4" for i in range(num_good)] + list(bad_names)
    order = np.random.default_rng(0).permutation(len(names))
    (root / "list.csv").write_text("".join(f"{names[i]} {i}\n" for i in order))
    return str(root / "list.csv")


def test_every_bad_kind_is_skipped_named_counted_and_replaced(tmp_path):
    kinds = plant_bad_files(tmp_path)
    ds = build_dataset(make_list(tmp_path, 12, kinds), DataConfig(**CFG, max_bad_fraction=1.0), train=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [ds[i] for i in range(len(ds))]
    messages = [str(w.message) for w in caught if issubclass(w.category, BadInputWarning)]
    assert len(messages) == len(kinds)  # one warning per bad file
    for name, reason in kinds.items():
        (message,) = [m for m in messages if f"/{name}:" in m]
        assert str(tmp_path / name) in message and reason in message
    assert ds.num_bad == len(kinds)
    for i, item in enumerate(items):
        good = ds.entries[item["index"]].path.split("/")[-1].startswith("good")
        assert good and item["video"].shape == (3, 4, 32, 32)
        if ds.entries[i].path.split("/")[-1].startswith("good"):
            assert item["index"] == i
        assert item["label"] == ds.entries[item["index"]].label
    with warnings.catch_warnings(record=True) as again:  # known-bad files are skipped without a new warning
        warnings.simplefilter("always")
        [ds[i] for i in range(len(ds))]
    assert not again and ds.num_bad == len(kinds)


def test_run_aborts_past_max_bad_fraction(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    path = make_list(tmp_path, 10, ["empty.mp4", "text.mp4"])
    ds = build_dataset(path, DataConfig(**CFG, max_bad_fraction=0.2), train=False)
    with pytest.warns(BadInputWarning):
        [ds[i] for i in range(len(ds))]  # 2 of 12 is within 20%
    assert ds.num_bad == 2

    ds = build_dataset(path, DataConfig(**CFG, max_bad_fraction=0.1), train=False)
    with pytest.warns(BadInputWarning) as caught, pytest.raises(TooManyBadFilesError) as info:
        [ds[i] for i in range(len(ds))]
    assert len(caught) == 2  # the first bad file was tolerated, the second one aborts
    message = str(info.value)
    assert "2 of 12 files (16.7%) are unreadable" in message and "data.max_bad_fraction=0.1" in message
    assert "videojepa data check" in message and str(tmp_path / "list.csv") in message


def test_workers_share_the_count_and_surface_the_abort_cleanly(tmp_path):
    bad = ["empty.mp4", "text.mp4", "missing.mp4"]
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    path = make_list(tmp_path, 13, bad)
    cfg = DataConfig(**{**CFG, "num_workers": 2, "max_bad_fraction": 0.5})
    ds = build_dataset(path, cfg, train=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(build_loader(ds, 4, cfg, seed=0))
    assert len(batches) == 4 and all(b["video"].shape == (4, 3, 4, 32, 32) for b in batches)
    assert ds.num_bad == 3  # counted once each, across both workers

    cfg = DataConfig(**{**CFG, "num_workers": 2, "max_bad_fraction": 0.1})
    with pytest.raises(TooManyBadFilesError) as info:
        list(build_loader(build_dataset(path, cfg, train=True), 4, cfg, seed=0))
    message = str(info.value)
    assert "Traceback" not in message and "\n" not in message
    assert "are unreadable, more than data.max_bad_fraction=0.1" in message


def test_an_exclude_dataset_never_substitutes_a_bad_file(tmp_path):
    from videojepa.eval.features import extract_dataset
    from videojepa.models.registry import create_model

    write_index_video(str(tmp_path / "good0.mp4"), 24, 32, 32)
    write_index_video(str(tmp_path / "good1.mp4"), 24, 32, 32)
    (tmp_path / "bad.mp4").write_text("not a video\n")
    (tmp_path / "list.csv").write_text("good0.mp4 0\nbad.mp4 1\ngood1.mp4 1\n")
    cfg = DataConfig(**{**CFG, "max_bad_fraction": 0.5, "num_views": 2})
    ds = build_dataset(str(tmp_path / "list.csv"), cfg, train=False, on_bad="exclude")
    with pytest.warns(BadInputWarning, match=r"bad\.mp4: not a readable media file .*\(1 bad of 3 files so far\)"):
        item = ds[1]
    assert item["index"] == -1 and item["label"] == 1 and item["video"].shape == (2, 3, 4, 32, 32)
    assert ds[0]["index"] == 0 and ds[2]["index"] == 2 and ds.num_bad == 1
    encoder = create_model("vit_pico", patch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadInputWarning)
        feats = extract_dataset(encoder, ds, batch_size=3, pooling="mean")
    assert feats.indices.tolist() == [[0, 2]] and feats.labels.tolist() == [[0, 1]]  # no row for bad.mp4
    assert feats.features.shape[:2] == (1, 2)
    # negative control: the training rule replaces it by another file, so a file is counted twice
    replaced = build_dataset(str(tmp_path / "list.csv"), cfg, train=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadInputWarning)
        assert replaced[(1, 0, 0)]["index"] in (0, 2)
