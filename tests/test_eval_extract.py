"""Feature extraction: encoder forwards, pooling, the feature cache, and `videojepa extract`."""

import copy
import csv
import json

import av
import numpy as np
import pytest
import torch

from videojepa.data.readers import open_video, read_image
from videojepa.data.transforms import ClipTransform
from videojepa.encoder_io import load_encoder, save_encoder
from videojepa.eval.extract import video_windows, window_starts
from videojepa.eval.features import FeatureSet, cache_key, encode, load_or_extract, pool, prepare_encoder
from videojepa.models import create_model

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


pytestmark = pytest.mark.usefixtures("one_thread")


def write_video(path, frames: int, height: int = 40, width: int = 48, seed: int = 0):
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        for _ in range(frames):
            frame = (rng.random((height, width, 3)) * 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("media")
    videos = root / "videos"
    videos.mkdir()
    write_video(videos / "a.mp4", 40)
    write_video(videos / "b.mp4", 10, seed=1)  # shorter than one window
    Image.fromarray((np.random.default_rng(2).random((36, 44, 3)) * 255).astype(np.uint8)).save(videos / "c.png")
    (videos / "d.mp4").write_bytes(b"not a video at all")
    torch.manual_seed(0)
    encoder = create_model("vit_pico", patch_size=8)
    save_encoder(
        encoder,
        root / "enc.safetensors",
        data={"frames_per_clip": 8, "frame_step": 2, "crop_size": 32, "mean": MEAN, "std": STD},
    )
    return root


def direct_forward(encoder, path, frames, layer=-1):
    """The reference: decode exactly these frames, transform, forward one clip."""
    if str(path).endswith(".png"):
        pixels = read_image(str(path))[None].expand(len(frames), -1, -1, -1)
    else:
        with open_video(str(path)) as reader:
            pixels = reader.read(frames)
    clip = ClipTransform(32, MEAN, STD, train=False, eval_resize_ratio=1.0)(pixels)
    with torch.no_grad():
        return encoder(clip, layers=[layer])[0][0]


def read_index(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_window_starts_cover_the_whole_video():
    assert window_starts(40, 15, 6) == [0, 6, 12, 18, 24, 25]
    assert window_starts(30, 15, 15) == [0, 15] and window_starts(10, 15, 4) == [0]
    offsets = np.arange(4) * 2
    windows = video_windows(5, offsets, 7)  # short: one window, last frame repeated
    assert windows.tolist() == [[0, 2, 4, 4]]
    assert video_windows(20, offsets, 7, start=4, end=16).tolist() == [[4, 6, 8, 10], [9, 11, 13, 15]]


def test_encode_multi_clip_batches_and_pooling():
    torch.manual_seed(0)
    encoder = create_model("vit_pico", patch_size=8).eval()
    video = torch.randn(2, 3, 3, 4, 16, 16)  # 2 videos x 3 clips; grid 2 x 2 x 2 = 8 tokens
    tokens = encode(encoder, video, layers=[0, -1])
    assert tokens.shape == (2, 3, 8, 2 * 64)
    with torch.no_grad():
        direct = torch.cat(encoder(video[1, 2:3], layers=[0, -1]), -1)[0]
    torch.testing.assert_close(tokens[1, 2], direct, rtol=0, atol=1e-5)
    assert pool(tokens, "mean").shape == (2, 3, 128) and pool(tokens, "frame", 2).shape == (2, 3, 2, 128)
    torch.testing.assert_close(pool(tokens, "frame", 2).mean(-2), pool(tokens, "mean"))
    fast = encode(prepare_encoder(copy.deepcopy(encoder), "bf16"), video, layers=[0, -1], precision="bf16")
    assert fast.dtype == torch.float32 and ((fast - tokens).norm() / tokens.norm()) < 0.02


def test_feature_cache_is_reused_only_for_the_same_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return FeatureSet(torch.randn(1, 4, 1, 8), torch.tensor([[0, 1, 1, 3]]))

    path = tmp_path / "f.safetensors"
    first, hit1 = load_or_extract(path, cache_key(a=1), compute)
    again, hit2 = load_or_extract(path, cache_key(a=1), compute)
    other, hit3 = load_or_extract(path, cache_key(a=2), compute)
    assert (hit1, hit2, hit3) == (False, True, False) and len(calls) == 2
    assert torch.equal(first.features, again.features) and not torch.equal(first.features, other.features)
    assert again.label([5, 6, 7, 8]).labels.tolist() == [[5, 6, 6, 8]]  # labels follow the files actually used


def test_feature_cache_recomputes_a_damaged_file_with_a_warning_but_lets_other_errors_through(tmp_path, monkeypatch):
    import safetensors

    compute = lambda: FeatureSet(torch.randn(1, 2, 4), torch.tensor([[0, 1]]))  # noqa: E731
    path = tmp_path / "f.safetensors"
    path.write_bytes(b"half a file")
    with pytest.warns(UserWarning, match=f"feature cache {path} is damaged .*; computing the features again"):
        _, hit = load_or_extract(path, cache_key(a=1), compute)
    assert not hit and load_or_extract(path, cache_key(a=1), compute)[1]  # rewritten whole, then reused

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(safetensors, "safe_open", unreadable)
    with pytest.raises(PermissionError):  # not a stale cache: never hidden behind a silent recompute
        load_or_extract(path, cache_key(a=1), compute)


def test_extracted_tokens_equal_a_direct_forward(media, tmp_path, cli):
    out = tmp_path / "a.npy"
    code, stdout, err = cli(
        "extract",
        "--checkpoint",
        media / "enc.safetensors",
        "--input",
        media / "videos/a.mp4",
        "--out",
        out,
        "--pooling",
        "none",
        "--stride",
        6,
        "--workers",
        0,
        "--precision",
        "fp32",  # compared with an fp32 forward (the default, auto, may take bf16 on this CPU)
        "--no-progress",
    )
    assert code == 0, err
    feats, rows = np.load(out), read_index(tmp_path / "a.index.csv")
    # 8 frames every 2nd frame span 15 frames; starts every 6 frames, plus one ending at the last frame
    assert [int(r["start_frame"]) for r in rows] == [0, 6, 12, 18, 24, 25] and rows[-1]["end_frame"] == "40"
    assert feats.shape == (6, 4 * 4 * 4, 64) and json.loads(stdout)["shape"] == [6, 64, 64]
    encoder = load_encoder(media / "enc.safetensors")
    for row, f in zip(rows, feats):
        frames = [int(x) for x in row["frames"].split()]
        assert frames == list(range(int(row["start_frame"]), int(row["start_frame"]) + 16, 2))
        torch.testing.assert_close(torch.from_numpy(f), direct_forward(encoder, row["path"], frames), rtol=0, atol=1e-5)
    # --fps 4 on this 8 fps video takes every 2nd frame too
    code, _, err = cli(
        "extract",
        "--checkpoint",
        media / "enc.safetensors",
        "--input",
        media / "videos/a.mp4",
        "--out",
        tmp_path / "fps.npy",
        "--fps",
        4,
        "--frame-step",
        1,
        "--stride",
        6,
        "--workers",
        0,
        "--no-progress",
        "--pooling",
        "none",
        "--precision",
        "fp32",
    )
    assert code == 0, err
    assert read_index(tmp_path / "fps.index.csv") == rows
    assert np.array_equal(np.load(tmp_path / "fps.npy"), feats)


def test_folder_with_an_image_a_short_video_and_a_bad_file(media, tmp_path, cli):
    out = tmp_path / "all.safetensors"
    with pytest.warns(UserWarning, match="skipping .*d.mp4"):
        code, stdout, err = cli(
            "extract",
            "--checkpoint",
            media / "enc.safetensors",
            "--input",
            media / "videos",
            "--out",
            out,
            "--layers",
            "0,-1",
            "--pooling",
            "frame",
            "--workers",
            0,
            "--precision",
            "fp32",
            "--no-progress",
        )
    assert code == 0, err
    from safetensors.torch import load_file

    data = load_file(str(out))
    rows = read_index(tmp_path / "all.index.csv")
    summary = json.loads((tmp_path / "all.json").read_text())
    names = [r["path"].rsplit("/", 1)[-1] for r in rows]
    assert names == ["a.mp4"] * 3 + ["b.mp4", "c.png"]  # back-to-back windows + one ending at the end; b, c: one
    assert data["features"].shape == (5, 2, 4, 64)  # rows, layers, time steps, width
    assert data["video"].tolist() == [0, 0, 0, 1, 2] and data["start_frame"].tolist() == [0, 15, 25, 0, 0]
    assert rows[3]["frames"] == "0 2 4 6 8 9 9 9" and rows[4]["frames"] == " ".join(["0"] * 8)
    assert [s["path"].rsplit("/", 1)[-1] for s in summary["skipped"]] == ["d.mp4"] and summary["videos"] == 3
    encoder = load_encoder(media / "enc.safetensors")
    for i in (3, 4):  # the short video and the image, layer 0, per-frame pooled
        frames = [int(x) for x in rows[i]["frames"].split()]
        expected = pool(direct_forward(encoder, rows[i]["path"], frames, layer=0), "frame", 4)
        torch.testing.assert_close(data["features"][i, 0], expected, rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore:skipping")
def test_interrupted_extraction_resumes_where_it_stopped(media, tmp_path, cli, monkeypatch):
    import videojepa.eval.extract as extract

    args = [
        "extract",
        "--checkpoint",
        media / "enc.safetensors",
        "--input",
        media / "videos",
        "--batch-size",
        2,
        "--workers",
        0,
        "--no-progress",
        "--stride",
        5,
    ]
    assert cli(*args, "--out", tmp_path / "full.npy")[0] == 0
    calls, real_encode = [], extract.encode

    def flaky(*a, **kw):
        calls.append(1)
        if len(calls) == 4:  # a.mp4 (6 windows, 3 batches) is done, b.mp4 and c.png are not
            raise KeyboardInterrupt
        return real_encode(*a, **kw)

    monkeypatch.setattr(extract, "encode", flaky)
    assert cli(*args, "--out", tmp_path / "part.npy")[0] == 130
    assert sorted(p.name for p in (tmp_path / "part.parts").glob("*.npz")) == ["00000000.npz"]
    calls.clear()
    monkeypatch.setattr(extract, "encode", lambda *a, **kw: calls.append(1) or real_encode(*a, **kw))
    assert cli(*args, "--out", tmp_path / "part.npy")[0] == 0
    assert len(calls) == 1  # only b.mp4 and c.png, in one batch of 2
    assert np.array_equal(np.load(tmp_path / "full.npy"), np.load(tmp_path / "part.npy"))
    assert not (tmp_path / "part.parts").exists()
    code, _, err = cli(*args[:-2], "--stride", 4, "--out", tmp_path / "part.npy")
    assert code == 2 and "already exists" in err and "--force" in err


def test_extract_rejects_bad_arguments_with_one_line(media, tmp_path, cli):
    base = ["extract", "--checkpoint", media / "enc.safetensors", "--input", media / "videos/a.mp4", "--workers", 0]
    code, _, err = cli(*base, "--out", tmp_path / "x.txt")
    assert code == 2 and "must end in .npy or .safetensors" in err and err.count("\n") == 1
    code, _, err = cli(*base, "--out", tmp_path / "x.npy", "--frames", 7)
    assert code == 2 and "multiple of the tubelet size 2" in err
    code, _, err = cli(*base, "--out", tmp_path / "x.npy", "--layers", "5")
    assert code == 2 and "blocks 0..1" in err
    code, _, err = cli("extract", "--checkpoint", tmp_path / "nothing", "--input", media, "--out", tmp_path / "x.npy")
    assert code == 2 and "no such encoder file" in err


def test_a_source_keeping_clips_decodes_once_for_several_encoders(tiny_synth, monkeypatch):
    from videojepa.data.build import build_dataset
    from videojepa.data.config import DataConfig
    from videojepa.data.datasets import VideoDataset
    from videojepa.eval.features import FeatureSource, extract_dataset

    data = DataConfig(frames_per_clip=8, frame_step=2, crop_size=32, num_workers=0)
    dataset = build_dataset(f"{tiny_synth}/motion/val.csv", data, train=False)
    torch.manual_seed(0)
    first, second = create_model("vit_pico", patch_size=8), create_model("vit_pico", patch_size=8)
    source = FeatureSource(keep_clips=True)
    source.extract(first, dataset, 3)
    alone = extract_dataset(second, dataset, 3)  # decodes
    decoded = []
    getitem = VideoDataset.__getitem__
    monkeypatch.setattr(VideoDataset, "__getitem__", lambda self, i: decoded.append(i) or getitem(self, i))
    shared = source.extract(second, dataset, 3)
    assert decoded == []  # every clip came from memory
    assert torch.equal(shared.features, alone.features) and torch.equal(shared.indices, alone.indices)
    assert torch.equal(shared.labels, alone.labels)
    # the same files labelled by another task (another list file) share the kept clips
    other_task = build_dataset(f"{tiny_synth}/appearance/val.csv", data, train=False)
    assert [e.path for e in other_task.entries] == [e.path for e in dataset.entries]
    source.extract(second, other_task, 3)
    assert decoded == []
    # negative controls: another batch size, and augmented clips (they differ at every read), are decoded
    source.extract(second, dataset, 2)
    assert len(decoded) == len(dataset)
    augmented = build_dataset(f"{tiny_synth}/motion/train.csv", data, train=True)
    kept = len(source.kept)
    decoded.clear()
    source.extract(second, augmented, 3)
    source.extract(second, augmented, 3)
    assert len(decoded) == 2 * len(augmented) and len(source.kept) == kept
