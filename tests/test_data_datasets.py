"""Dataset sources: V-JEPA lists, headed CSVs, class folders, images; item layout."""

import av
import pytest
import torch

from videojepa.data import DataConfig, build_dataset, read_entries
from videojepa.data.synth import decode_index, index_pattern, write_index_video
from videojepa.errors import UserError

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
CFG = dict(crop_size=32, eval_resize_ratio=1.0, mean=MEAN, std=STD, num_workers=0, frames_per_clip=4, frame_step=2)


def write_png(path, frame):
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.height, stream.width = frame.shape[:2]
        stream.pix_fmt = "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)


def shown(video):
    return decode_index(((video * STD[0] + MEAN[0]).movedim(-4, -1) * 255).numpy())


def test_official_list_with_relative_paths_and_class_names(tmp_path):
    (tmp_path / "clips").mkdir()
    for name in ("a b.mp4", "c.mp4"):  # a space inside a path is fine: the label is the last field
        write_index_video(str(tmp_path / "clips" / name), 20, 32, 32)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "train.csv").write_text("../clips/a b.mp4 1\n\n# comment\n../clips/c.mp4 0\n")
    (tmp_path / "lists" / "classes.txt").write_text("cat\ndog\n")
    ds = build_dataset(str(tmp_path / "lists" / "train.csv"), DataConfig(**CFG), train=False)
    assert [e.path for e in ds.entries] == [str(tmp_path / "clips" / "a b.mp4"), str(tmp_path / "clips" / "c.mp4")]
    assert [e.label for e in ds.entries] == [1, 0] and ds.classes == ["cat", "dog"]
    item = ds[0]
    assert set(item) == {"video", "label", "index"}
    assert item["video"].shape == (3, 4, 32, 32) and item["video"].dtype == torch.float32
    assert item["label"] == 1 and item["index"] == 0


def test_headed_csv_with_frame_window_and_named_labels(tmp_path):
    write_index_video(str(tmp_path / "v.mp4"), 100, 32, 32)
    (tmp_path / "list.csv").write_text("path,label,start_frame,end_frame\nv.mp4,walk,40,50\nv.mp4,run,,\n")
    ds = build_dataset(str(tmp_path / "list.csv"), DataConfig(**CFG), train=True)
    assert ds.classes == ["run", "walk"] and [e.label for e in ds.entries] == [1, 0]
    assert (ds.entries[0].start_frame, ds.entries[0].end_frame) == (40, 50)
    assert ds[(0, 0, 0)]["video"].shape == (3, 4, 32, 32)
    # training crops and flips scramble the pattern, so check the window with evaluation sampling
    ds_eval = build_dataset(str(tmp_path / "list.csv"), DataConfig(**CFG), train=False)
    assert shown(ds_eval[0]["video"]).tolist() == [41, 43, 45, 47]  # span 7 centred in [40, 50)


def test_comma_csv_without_header_and_bad_rows(tmp_path):
    write_index_video(str(tmp_path / "v.mp4"), 10, 32, 32)
    (tmp_path / "ok.csv").write_text("v.mp4,3\n")
    entries, _ = read_entries(str(tmp_path / "ok.csv"))
    assert entries[0].label == 3
    (tmp_path / "bad.csv").write_text("path,label\nv.mp4,1\nv.mp4\n")
    with pytest.raises(UserError, match=r"bad.csv:3: expected 2 columns"):
        read_entries(str(tmp_path / "bad.csv"))
    (tmp_path / "cols.csv").write_text("path,klass\nv.mp4,1\n")
    with pytest.raises(UserError, match="header columns"):
        read_entries(str(tmp_path / "cols.csv"))


def test_class_per_folder_tree(tmp_path):
    for cls in ("walk", "jump"):
        (tmp_path / cls / "sub").mkdir(parents=True)
        write_index_video(str(tmp_path / cls / "x.mp4"), 12, 32, 32)
        write_index_video(str(tmp_path / cls / "sub" / "y.mp4"), 12, 32, 32)
    (tmp_path / "walk" / "notes.txt").write_text("ignored")
    ds = build_dataset(str(tmp_path), DataConfig(**CFG), train=True)
    assert ds.classes == ["jump", "walk"] and ds.num_classes == 2
    found = sorted((e.label, e.path.split("/")[-1]) for e in ds.entries)
    assert found == [(0, "x.mp4"), (0, "y.mp4"), (1, "x.mp4"), (1, "y.mp4")]
    assert ds[(3, 0, 0)]["video"].shape == (3, 4, 32, 32)


def test_images_are_still_clips(tmp_path):
    for cls, i in (("a", 5), ("b", 9)):
        (tmp_path / cls).mkdir()
        write_png(tmp_path / cls / "img.png", index_pattern(10, 32, 32)[i])
    cfg = DataConfig(**{**CFG, "frames_per_clip": 6, "num_views": 3})
    ds = build_dataset(str(tmp_path), cfg, train=False)
    video = ds[1]["video"]
    assert video.shape == (3, 3, 6, 32, 32)
    assert (shown(video) == 9).all()
    ds_train = build_dataset(str(tmp_path), DataConfig(**{**CFG, "frames_per_clip": 6}), train=True)
    clip = ds_train[(0, 0, 0)]["video"]
    assert clip.shape == (3, 6, 32, 32) and torch.equal(clip[:, :1].expand_as(clip), clip)


def test_flat_folder_and_source_errors(tmp_path):
    write_index_video(str(tmp_path / "v.mp4"), 10, 32, 32)
    entries, classes = read_entries(str(tmp_path))
    assert len(entries) == 1 and entries[0].label == -1 and classes == []
    (tmp_path / "cls").mkdir()
    write_index_video(str(tmp_path / "cls" / "w.mp4"), 10, 32, 32)
    with pytest.raises(UserError, match="mixes class sub-folders with loose media files"):
        read_entries(str(tmp_path))
    with pytest.raises(UserError, match="data source not found"):
        read_entries(str(tmp_path / "nope.csv"))
    (tmp_path / "empty.csv").write_text("# nothing\n")
    with pytest.raises(UserError, match="lists no files"):
        read_entries(str(tmp_path / "empty.csv"))
    with pytest.raises(UserError, match="data.train is not set"):
        build_dataset(None, DataConfig(), train=True)
    with pytest.raises(UserError, match="data.decoder"):
        build_dataset(str(tmp_path / "cls"), DataConfig(decoder="decord"), train=True)


def test_config_fields_are_documented_and_strict():
    from pydantic import ValidationError

    assert all(f.description for f in DataConfig.model_fields.values())
    with pytest.raises(ValidationError):
        DataConfig(frame_stepp=2)
    with pytest.raises(ValidationError):
        DataConfig(short_video="stretch")


def test_single_file_mixed_labels_and_binary_lists(tmp_path):
    write_index_video(str(tmp_path / "v.mp4"), 10, 32, 32)
    entries, _ = read_entries(str(tmp_path / "v.mp4"))
    assert [e.path for e in entries] == [str(tmp_path / "v.mp4")]
    (tmp_path / "mixed.txt").write_text("v.mp4 3\nv.mp4 dog\n")
    with pytest.raises(UserError, match=r"mixed.txt:2: label 'dog' is not an integer"):
        read_entries(str(tmp_path / "mixed.txt"))
    (tmp_path / "blob.csv").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UserError, match="not a text file list"):
        read_entries(str(tmp_path / "blob.csv"))


def test_classes_txt_with_fewer_names_than_labels_is_an_error(tmp_path, cli):
    write_index_video(str(tmp_path / "v.mp4"), 10, 32, 32)
    (tmp_path / "list.csv").write_text("v.mp4 0\nv.mp4 2\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    message = (
        f"{tmp_path / 'classes.txt'} names 2 classes but {tmp_path / 'list.csv'} uses label 2: it needs at "
        f"least 3 names, one per line in label order (or remove it to number the classes)"
    )
    with pytest.raises(UserError) as err:
        read_entries(str(tmp_path / "list.csv"))
    assert str(err.value) == message
    code, out, stderr = cli("data", "check", tmp_path / "list.csv")
    assert code == 2 and stderr == f"videojepa data: error: {message}\n" and "Traceback" not in stderr
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\n")  # negative control: enough names
    assert read_entries(str(tmp_path / "list.csv"))[1] == ["cat", "dog", "bird"]
