"""`videojepa data synth|check`, through the real command line entry point (conftest's `cli`)."""

import json

import pytest

from videojepa.data.synth import write_index_video


def test_synth_writes_both_label_sets(tmp_path, cli):
    out = tmp_path / "synth"
    code, text, _ = cli(
        "data", "synth", "--out", out, "--num-videos", 8, "--frames", 8, "--size", 32, "--workers", 2, "--seed", 1
    )
    assert code == 0 and "wrote 8 videos (6 train, 2 val)" in text
    assert "motion     4 classes (chance 25.0%): rotate_cw, rotate_ccw, bounce, oscillate" in text
    for task in ("motion", "appearance"):
        assert (out / task / "train.csv").read_text().count(".mp4") == 6
    assert json.loads((out / "synth.json").read_text())["spec"]["frames"] == 8
    code, _, err = cli("data", "synth", "--out", out, "--num-videos", 8)
    assert code == 2 and err.startswith("videojepa data: error: ") and "pass --force" in err


def test_synth_motions_replaces_the_default_classes(tmp_path, cli):
    code, text, _ = cli(
        "data",
        "synth",
        "--out",
        tmp_path,
        "--num-videos",
        4,
        "--frames",
        2,
        "--size",
        16,
        "--workers",
        1,
        "--motions",
        "decelerate,accelerate,bounce",
    )
    assert code == 0 and "motion     3 classes (chance 33.3%): decelerate, accelerate, bounce" in text
    assert (tmp_path / "motion" / "classes.txt").read_text().split() == ["decelerate", "accelerate", "bounce"]
    assert json.loads((tmp_path / "synth.json").read_text())["motion_classes"] == ["decelerate", "accelerate", "bounce"]


def test_check_reports_exactly_the_planted_bad_file(tmp_path, cli):
    for i in range(4):
        write_index_video(str(tmp_path / f"clip{i}.mp4"), 40, 32, 32)
    data = (tmp_path / "clip0.mp4").read_bytes()
    (tmp_path / "broken.mp4").write_bytes(data[: len(data) // 3])
    write_index_video(str(tmp_path / "short.mp4"), 10, 32, 32)
    code, text, _ = cli("data", "check", tmp_path, "--workers", 2, "--frame-step", 2)
    assert code == 1
    bad_lines = [line for line in text.splitlines() if line.startswith("BAD")]
    assert bad_lines == [
        f"BAD   {tmp_path / 'broken.mp4'}: not a readable media file (Invalid data found when processing input)"
    ]
    assert "checked 6 files" in text and "5 ok, 1 bad, 1 shorter than one clip" in text and "clips/s" in text
    assert f"SHORT {tmp_path / 'short.mp4'}: 10 frames" in text

    (tmp_path / "broken.mp4").unlink()
    code, text, _ = cli("data", "check", tmp_path, "--json", "--frame-step", 1)
    report = json.loads(text)
    assert code == 0 and report["bad"] == 0 and report["files"] == 5 and report["frames"] == 170
    assert report["short"] == 1 and report["clips_per_s"] > 0


def test_check_of_a_list_with_a_missing_file(tmp_path, cli):
    write_index_video(str(tmp_path / "a.mp4"), 20, 32, 32)
    (tmp_path / "list.csv").write_text("a.mp4 0\ngone.mp4 1\n")
    code, text, _ = cli("data", "check", tmp_path / "list.csv")
    assert code == 1 and f"BAD   {tmp_path / 'gone.mp4'}: file not found" in text


def test_check_of_a_missing_path_is_a_user_error(tmp_path, cli):
    code, _, err = cli("data", "check", tmp_path / "nowhere")
    assert code == 2 and err.strip() == f"videojepa data: error: data source not found: {tmp_path / 'nowhere'}"
    with pytest.raises(SystemExit):
        cli("data")  # an action is required
