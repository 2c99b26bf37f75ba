"""AVA-layout files (`videojepa.data.ava`), keyframe clips (`data.keyframes`) and the synthetic localisation task
(`data.synth_localization`, `videojepa data synth`)."""

import hashlib
import json

import numpy as np
import pytest
import torch

from videojepa.data.ava import check_labels, frame_key, read_annotations, read_labelmap, read_proposals
from videojepa.data.keyframes import KeyframeClips, centred_clip, locate_keyframes
from videojepa.data.synth import write_dataset, write_index_video
from videojepa.data.synth_localization import write_localization
from videojepa.errors import UserError

GOOD = "v1,0902,0.1,0.2,0.5,0.9,12,0\n"


def one_line_error(call, *args):
    with pytest.raises(UserError) as err:
        call(*args)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "row, expected",
    [
        (
            "v1,0902,0.1,0.2,0.5\n",
            "train.csv:2: expected 8 columns (video_id,timestamp,x1,y1,x2,y2,action_id,person_id)",
        ),
        ("v1,0902,0.1,abc,0.5,0.9,12,0\n", "train.csv:2: y1 'abc' is not a number"),
        ("v1,0902,0.1,0.2,1.5,0.9,12,0\n", "train.csv:2: x2 1.5 is outside [0, 1]"),
        ("v1,0902,-0.2,0.2,0.5,0.9,12,0\n", "train.csv:2: x1 -0.2 is outside [0, 1]"),
        ("v1,0902,0.6,0.2,0.5,0.9,12,0\n", "train.csv:2: x2 0.5 must be greater than x1 0.6"),
        ("v1,0902,0.1,0.2,0.5,0.9,stand,0\n", "train.csv:2: action_id 'stand' is not an integer >= 1"),
        ("v1,0902,0.1,0.2,0.5,0.9,0,0\n", "train.csv:2: action_id '0' is not an integer >= 1"),
        ("v1,noon,0.1,0.2,0.5,0.9,12,0\n", "train.csv:2: timestamp 'noon' is not a number of seconds"),
        (",0902,0.1,0.2,0.5,0.9,12,0\n", "train.csv:2: video_id is empty"),
        ("v1,0902,0.1,0.2,0.5,0.9,12,p3\n", "train.csv:2: person_id 'p3' is not an integer"),
    ],
)
def test_a_bad_annotation_row_names_the_file_line_and_field(tmp_path, row, expected):
    path = tmp_path / "train.csv"
    path.write_text(GOOD + row)
    assert expected in one_line_error(read_annotations, path)


def test_annotation_rows_and_keys(tmp_path):
    path = tmp_path / "val.csv"
    path.write_text(GOOD + "v1,0902,0.6,0.2,0.9,0.9,12,1\nv1,0903\nv2,904.5,0,0,1,1,80\n")
    rows = read_annotations(path)
    assert [r.key for r in rows] == ["v1,902.000000", "v1,902.000000", "v1,903.000000", "v2,904.500000"]
    assert rows[0].box == (0.1, 0.2, 0.5, 0.9) and rows[0].action_id == 12 and rows[0].person_id == 0
    assert rows[2].box is None and rows[2].action_id is None  # an annotated keyframe without boxes
    assert rows[3].person_id is None and rows[3].line == 4
    assert frame_key("v1", "0902") == frame_key("v1", "902.0") == "v1,902.000000"


def test_proposals_in_both_layouts(tmp_path):
    path = tmp_path / "proposals.csv"
    path.write_text("v1,0902,0.1,0.2,0.5,0.9,0.97\nv1,0902,0.1,0.2,0.5,0.9,,0.5\nv1,0903,0.1,0.2,0.5,0.9,3,0.25\n")
    assert [r.score for r in read_proposals(path)] == [0.97, 0.5, 0.25]
    path.write_text("v1,0902,0.1,0.2,0.5,0.9\n")
    assert "proposals.csv:1: expected 7 columns" in one_line_error(read_proposals, path)


def test_labelmap(tmp_path):
    path = tmp_path / "labels.pbtxt"
    path.write_text('item {\n  name: "stand"\n  id: 12\n}\nitem { name: "bend/bow (at the waist)" label_id: 1 }\n')
    assert read_labelmap(path) == {1: "bend/bow (at the waist)", 12: "stand"}
    path.write_text('item {\n  name: "stand"\n  id: 12\n}\nitem {\n  name: "sit"\n  id: 12\n}\n')
    assert "id 12 is listed twice" in one_line_error(read_labelmap, path)
    path.write_text("nothing here\n")
    assert "no label map items" in one_line_error(read_labelmap, path)


def test_a_label_outside_the_label_map(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(GOOD + "v1,0902,0.1,0.2,0.5,0.9,7,0\n")
    rows = read_annotations(path)
    message = one_line_error(check_labels, rows, {12: "stand"}, path, "error")
    assert message == f"{path}:2: action_id 7 is not in the label map (ids: 12)"
    kept, dropped = check_labels(rows, {12: "stand"}, path, "skip")
    assert [r.action_id for r in kept] == [12] and dropped == 1


@pytest.fixture
def video_dir(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    write_index_video(str(folder / "v1.mp4"), 40, fps=10)  # frame i shows i; 4 s at 10 fps
    return folder


def test_keyframes_find_their_video_and_frame(tmp_path, video_dir):
    path = tmp_path / "train.csv"
    path.write_text("v1,1.5,0.1,0.2,0.5,0.9,3,0\nv1,1.5,0.5,0.2,0.9,0.9,3,1\nv1,3.94\nv1,901,0,0,1,1,3,0\n")
    rows = read_annotations(path)
    keyframes = locate_keyframes(rows[:3], video_dir, path)
    assert [(k.timestamp, k.frame) for k in keyframes.values()] == [("1.5", 15), ("3.94", 39)]
    shifted = locate_keyframes(rows[3:], video_dir, path, time_offset=900)  # a 15-minute cut starting at 900 s
    assert next(iter(shifted.values())).frame == 10
    message = one_line_error(locate_keyframes, rows[3:], video_dir, path)
    assert message.startswith(f"{path}:4: timestamp 901 is frame 9010 of ") and "frames 0..39 at 10 fps" in message


def test_a_video_id_with_no_video(tmp_path, video_dir):
    path = tmp_path / "val.csv"
    path.write_text("v1,1,0.1,0.2,0.5,0.9,3,0\nmissing_id,2,0.1,0.2,0.5,0.9,3,0\n")
    message = one_line_error(locate_keyframes, read_annotations(path), video_dir, path)
    assert message.startswith(f"{path}:2: video_id 'missing_id' has no video in {video_dir}")
    (video_dir / "broken.mp4").write_bytes(b"not a video")
    path.write_text("broken,2,0.1,0.2,0.5,0.9,3,0\n")
    assert f"{path}:1: video {video_dir / 'broken.mp4'} cannot be read" in one_line_error(
        locate_keyframes, read_annotations(path), video_dir, path
    )


def test_clips_are_centred_on_the_keyframe(tmp_path, video_dir):
    assert centred_clip(8, 16, 1, 16).tolist() == list(range(16))  # 8 before the keyframe, 7 after
    assert centred_clip(20, 4, 3, 40).tolist() == [14, 17, 20, 23]
    assert centred_clip(1, 4, 2, 40).tolist() == [0, 0, 1, 3]  # clamped at the start
    assert centred_clip(38, 4, 2, 40).tolist() == [34, 36, 38, 39]  # and at the end
    path = tmp_path / "train.csv"
    path.write_text("v1,1.5,0.1,0.2,0.5,0.9,3,0\nv1,0.1,0.1,0.2,0.5,0.9,3,0\n")
    keyframes = list(locate_keyframes(read_annotations(path), video_dir, path).values())
    clips = KeyframeClips(keyframes, 4, 2, 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    from videojepa.data.synth import decode_index

    assert decode_index(clips.frames(0).numpy()).tolist() == [11, 13, 15, 17]
    assert decode_index(clips.frames(1).numpy()).tolist() == [0, 0, 1, 3]
    assert decode_index(clips.keyframe_image(0).numpy()[None]).tolist() == [15]
    item = clips[0]
    assert item["video"].shape == (3, 4, 32, 32) and item["index"] == 0
    assert item["video"].min() >= -1.0 - 1e-6 and item["video"].max() <= 1.0 + 1e-6  # (x/255 - 0.5)/0.5
    clips.close()


def digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_synthetic_localisation_layout(tmp_path):
    info = write_localization(str(tmp_path), num_videos=12, frames=8, size=32, seed=1, workers=1)
    root = tmp_path / "localization"
    labelmap = read_labelmap(root / "labelmap.pbtxt")
    assert labelmap == {1: "rotate_cw", 2: "rotate_ccw", 3: "bounce", 4: "oscillate"}
    train, val = read_annotations(root / "train.csv"), read_annotations(root / "val.csv")
    assert len({r.video_id for r in train}) == 9 and len({r.video_id for r in val}) == 3
    assert info["boxes"] == {"train": len(train), "val": len(val)}
    assert {r.timestamp for r in train + val} == {"0.25"}  # frame 4 of 8 at 16 fps
    per_video = {}
    for r in train + val:
        per_video.setdefault(r.video_id, []).append(r)
        assert r.action_id in labelmap and 0.05 < r.box[2] - r.box[0] < 0.6 and 0.05 < r.box[3] - r.box[1] < 0.6
    assert {len(v) for v in per_video.values()} <= {2, 3}  # several objects per clip, one row each
    keyframes = locate_keyframes(train + val, root / "videos", root / "train.csv")
    assert {k.frame for k in keyframes.values()} == {4}
    proposals = read_proposals(root / "val_proposals.csv")
    assert {r.video_id for r in proposals} <= {r.video_id for r in val} and len(proposals) >= len(val)
    tracks = (root / "tracks.csv").read_text().splitlines()
    assert tracks[0] == "video_id,frame,object,x1,y1,x2,y2,action_id" and len(tracks) == 1 + 8 * len(train + val)
    # the keyframe's rows of tracks.csv are the annotations
    at_key = {(t.split(",")[0], t.split(",")[2]): t.split(",")[3:7] for t in tracks[1:] if t.split(",")[1] == "4"}
    for r in train:
        assert tuple(float(v) for v in at_key[(r.video_id, str(r.person_id))]) == r.box
    # a pure function of the arguments, whatever the workers
    write_localization(str(tmp_path / "again"), num_videos=12, frames=8, size=32, seed=1, workers=2)
    assert digest(root) == digest(tmp_path / "again" / "localization")


def test_boxes_cover_the_objects(tmp_path):
    """Inside its box an object's pixels differ from the background frame (rendered without objects): the boxes
    are where the objects are."""
    from videojepa.data.synth import SynthSpec
    from videojepa.data.synth_localization import plan_objects, render_objects

    spec = SynthSpec(frames=8, size=48, noise=0.0)
    objects = plan_objects(1, 3, seed=5, motions=["rotate_cw", "bounce"])[0]
    frames, boxes = render_objects(spec, 5, 0, objects)
    empty, _ = render_objects(spec, 5, 0, [])
    changed = np.abs(frames.astype(int) - empty.astype(int)).sum(-1) > 30  # F x S x S
    for k in range(len(objects)):
        for f in range(8):
            x1, y1, x2, y2 = (boxes[k, f] * 48).round().astype(int)
            inside = changed[f, y1:y2, x1:x2].mean()
            assert inside > 0.3, (k, f, inside)
    union = np.zeros_like(changed)
    for k in range(len(objects)):
        for f in range(8):
            x1, y1, x2, y2 = (boxes[k, f] * 48).round().astype(int)
            union[f, max(0, y1 - 1) : y2 + 1, max(0, x1 - 1) : x2 + 1] = True  # + the anti-aliased rim
    assert not (changed & ~union).any()  # nothing drawn outside the boxes


def test_data_synth_adds_localisation_and_keeps_the_other_tasks(tmp_path, cli):
    code, text, _ = cli(
        "data", "synth", "--out", tmp_path / "cli", "--num-videos", 8, "--frames", 8, "--size", 32, "--workers", 1,
        "--localization-videos", 6,
    )  # fmt: skip
    assert code == 0 and "localization 4 train / 2 val videos" in text
    summary = json.loads((tmp_path / "cli" / "localization" / "localization.json").read_text())
    assert summary["num_videos"] == 6 and summary["classes"]["1"] == "rotate_cw"
    # the motion and appearance sets are byte for byte what write_dataset alone writes for the same seed
    write_dataset(str(tmp_path / "alone"), num_videos=8, frames=8, size=32, seed=0, workers=1)
    alone, with_loc = digest(tmp_path / "alone"), digest(tmp_path / "cli")
    assert alone == {k: v for k, v in with_loc.items() if not k.startswith("localization/")}
    assert len(alone) == 8 + 4 + 2 + 2  # videos, 2 tasks x (train, val), classes.txt x 2, scenes.csv + synth.json
    code, _, err = cli("data", "synth", "--out", tmp_path / "x", "--num-videos", 8, "--localization-videos", -1)
    assert code == 2 and "--localization-videos must be >= 0" in err


def test_keyframe_clip_dataset_in_a_loader(tmp_path):
    write_localization(str(tmp_path), num_videos=4, frames=8, size=32, seed=2, workers=1)
    root = tmp_path / "localization"
    rows = read_annotations(root / "train.csv")
    keyframes = list(locate_keyframes(rows, root / "videos", root / "train.csv").values())
    dataset = KeyframeClips(keyframes, 8, 1, 32, (0.45, 0.45, 0.45), (0.225, 0.225, 0.225))
    batches = list(torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1))
    assert [b["index"].tolist() for b in batches] == [[0, 1], [2]]
    assert torch.equal(batches[0]["video"][1], dataset[1]["video"])  # workers read what the main process reads
