"""`videojepa demo` end to end at toy sizes: matched FLOPs, run directories, report, plots, no retraining."""

import json
from pathlib import Path

import pytest

from videojepa.data.synth import DEFAULT_MOTIONS
from videojepa.demo import METHODS, DemoSettings, DemoSize, run_demo
from videojepa.demo.report import ROW_KEYS, RUN_KEYS, SCHEMA, TOP_KEYS, motion_split
from videojepa.demo.run import CURVE_PROTOCOLS, PROTOCOLS
from videojepa.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")

# 8-frame 32x32 clips, patch 8, tubelet 2: 4 x 4 x 4 = 64 tokens of width 64 (vit_pico)
CLIP = ["data.crop_size=32", "data.frames_per_clip=8", "data.frame_step=1", "data.num_workers=0"]
PRETRAIN = (
    *CLIP,
    "model.name=vit_pico",
    "predictor.depth=1",
    "predictor.embed_dim=32",
    "predictor.num_heads=2",
    "train.batch_size=4",
    "train.log_every=2",
    "train.checkpoint_every=4",
    "train.precision=fp32",
)
PROBE = (*CLIP, "probe.heads=2", "optim.lr=[1e-3]", "features.batch_size=32")
SIZE = DemoSize(
    num_videos=24, budget_steps=6, teacher_share=0.2, probe_epochs=1, frames=8, size=32, curve_fractions=(0.25, 0.5)
)


def settings(out, **changes):
    return DemoSettings(
        **{
            "out": str(out),
            "size": SIZE,
            "seed": 0,
            "pretrain_overrides": PRETRAIN,
            "probe_overrides": PROBE,
            "workers": 1,
            **changes,
        }
    )


def snapshot(out: Path) -> dict:
    """mtime of every checkpoint, encoder and probe result."""
    files = [
        *out.glob("runs/*/checkpoints/*.pt"),
        *out.glob("runs/*/encoder.safetensors"),
        *out.glob("runs/*/encoders/*.safetensors"),
        *out.glob("probes/*/*/results.json"),
    ]
    return {str(p): p.stat().st_mtime_ns for p in files}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # toy tensors: one thread is faster, as in the one_thread fixture
    out = tmp_path_factory.mktemp("demo")
    yield out, run_demo(settings(out), log=lambda _: None)
    torch.set_num_threads(threads)


def test_demo_trains_every_method_in_an_ordinary_run_directory(demo):
    out, results = demo
    for name in METHODS:
        run = out / "runs" / name
        assert (run / "encoder.safetensors").exists() and (run / "config.yaml").exists(), name
        assert results["runs"][name]["trained_now"] and results["runs"][name]["wall_s"] > 0
    student = (out / "runs" / "salt_student" / "config.yaml").read_text()
    assert f"checkpoint: {out}/runs/salt_teacher" in student and f"train: {out}/data/motion/train.csv" in student


def test_every_method_spends_the_budget_to_within_one_step(demo):
    _, results = demo
    budget, runs = results["budget"]["flops"], results["runs"]
    assert runs["vjepa"]["steps"] == SIZE.budget_steps and runs["vjepa"]["flops"] == budget
    assert runs["videomae"]["steps"] > SIZE.budget_steps  # cheaper steps (one tube mask, no target encoder)
    assert 0 <= budget - runs["videomae"]["flops"] < runs["videomae"]["flops_per_step"]
    assert runs["salt_teacher"]["flops"] <= SIZE.teacher_share * budget
    salt = runs["salt_teacher"]["flops"] + runs["salt_student"]["flops"]
    assert 0 <= budget - salt < runs["salt_student"]["flops_per_step"]
    for name in METHODS:  # the trained steps are the planned ones
        assert runs[name]["health"]["step"] == runs[name]["steps"] >= 1


def test_results_follow_the_documented_schema(demo):
    out, results = demo
    saved = json.loads((out / "results.json").read_text())
    assert saved["schema"] == SCHEMA and all(k in saved for k in TOP_KEYS)
    assert [r["name"] for r in saved["rows"]] == ["random_init", "salt_teacher", "salt", "vjepa", "videomae"]
    assert all(k in row for row in saved["rows"] for k in ROW_KEYS)
    assert all(k in run for run in saved["runs"].values() for k in RUN_KEYS)
    assert saved["chance"] == pytest.approx({"motion": 1 / len(DEFAULT_MOTIONS), "appearance": 1 / 4})
    assert saved["protocols"] == list(PROTOCOLS) and saved["curve_protocols"] == list(CURVE_PROTOCOLS)
    for name in ("random_init", *METHODS):
        assert set(saved["probes"][name]["top1"]) == set(PROTOCOLS)
        for kind in PROTOCOLS:  # the attentive probe on the size's attentive tasks only (the default: motion)
            tasks = set(SIZE.attentive_tasks) if kind == "attentive" else {"motion", "appearance"}
            assert set(saved["probes"][name]["top1"][kind]) == tasks
            assert (out / "probes" / name / kind / "results.json").exists()
        assert set(saved["probes"][name]["curve_top1"]) == set(CURVE_PROTOCOLS)
    for run in saved["runs"].values():
        assert run["health"]["feature_rank"] > 0 and run["health"]["target_std"] > 0
    salt = next(r for r in saved["rows"] if r["name"] == "salt")
    assert salt["probe"] == "salt_student" and salt["steps"] == [saved["runs"][n]["steps"] for n in METHODS[:2]]
    for row in saved["rows"]:  # the motion split comes from the probed encoder's confusion matrix
        for kind in PROTOCOLS:
            confusion = saved["probes"][row["probe"]]["confusion"][kind]["motion"]
            assert confusion["classes"] == list(DEFAULT_MOTIONS) and sum(map(sum, confusion["matrix"])) == 6  # val
            assert row["motion_split"][kind] == motion_split(confusion["classes"], confusion["matrix"])
    timing = saved["timing"]
    assert timing["data_s"] > 0 and timing["pretrain_s"] > 0 and timing["probe_s"] > 0


def test_the_report_names_the_penalty_every_method_trained_with(demo):
    # the demo presets add VICReg's variance-covariance penalty (method.feature_reg=1), which no paper uses
    out, results = demo
    assert all(run["feature_reg"] == 1.0 for run in results["runs"].values())
    labels = {row["name"]: row["label"] for row in results["rows"]}
    assert labels == {
        "random_init": "random init (no pretraining)",
        "salt_teacher": "SALT teacher alone (V-Pixel) + VICReg",
        "salt": "SALT (teacher + student) + VICReg",
        "vjepa": "V-JEPA + VICReg",
        "videomae": "VideoMAE + VICReg",
    }
    assert {c["label"] for c in results["curves"].values()} == {
        "SALT teacher (V-Pixel) + VICReg",
        "SALT (student) + VICReg",
        "V-JEPA + VICReg",
        "VideoMAE + VICReg",
    }
    table = (out / "results.md").read_text()
    assert "+ VICReg: trained with VICReg's variance-covariance penalty on the context features " in table
    assert "(method.feature_reg = 1)" in table and "| V-JEPA + VICReg |" in table


def test_a_method_trained_as_published_keeps_its_plain_name():
    from videojepa.demo.report import penalty_label

    assert penalty_label("V-JEPA", [{"feature_reg": 0.0}]) == "V-JEPA"
    assert penalty_label("SALT", [{"feature_reg": 0.0}, {"feature_reg": 0.5}]) == "SALT + VICReg"
    assert penalty_label("random init", []) == "random init"


def test_curves_run_from_random_init_through_every_snapshot_to_the_final_encoder(demo):
    out, results = demo
    runs, probes, curves = results["runs"], results["probes"], results["curves"]
    assert set(curves) == {"salt_teacher", "salt", "vjepa", "videomae"}
    assert runs["vjepa"]["snapshots"] == [0, 2, 3]  # the initial weights, a quarter and a half of 6 steps
    for name, run in runs.items():
        for step in run["snapshots"]:  # kept by the trainer, probed with the cheap protocols only
            assert (out / "runs" / name / "encoders" / f"step_{step:08d}.safetensors").exists()
            if step:  # step 0 is not probed: random init is every curve's first point
                assert probes[f"{name}_step{step}"]["top1"] == {}
                assert set(probes[f"{name}_step{step}"]["curve_top1"]) == set(CURVE_PROTOCOLS)
    teacher_flops = runs["salt_teacher"]["flops"]
    for name, curve in curves.items():
        first, *rest = curve["points"]
        random_init = probes["random_init"]
        assert first["encoder"] == "random_init" and first["flops"] == 0
        assert first["top1"] == {**random_init["curve_top1"], "attentive": random_init["top1"]["attentive"]}
        run = "salt_student" if name == "salt" else name
        assert [p["step"] for p in rest] == [*runs[run]["snapshots"][1:], runs[run]["steps"]]
        offset = teacher_flops if name == "salt" else 0.0
        for p in rest:
            assert p["flops"] == pytest.approx(offset + p["step"] * runs[run]["flops_per_step"])
            probed = probes[p["encoder"]]  # the curves' subset; the attentive probe at the end only
            ends = {"attentive": probed["top1"]["attentive"]} if p is rest[-1] else {}
            assert p["top1"] == {**probed["curve_top1"], **ends}
            assert 0 < p["drift"] < 1  # trained weights moved from the initial ones, by less than their norm
            logged = p["step"] >= 2 or p is rest[-1]  # metrics are logged every 2 steps and at the last one
            assert p["feature_rank"] > 0 if logged else p["feature_rank"] is None
        assert rest[-1]["flops"] == pytest.approx(offset + runs[run]["flops"])
        assert first["drift"] == 0.0
    assert curves["salt"]["points"][-1]["flops"] <= results["budget"]["flops"]


def test_motion_split_of_a_confusion_matrix():
    classes = ["rotate_cw", "rotate_ccw", "bounce", "oscillate"]
    matrix = [
        [6, 2, 1, 1],  # true rotate_cw
        [4, 4, 0, 2],  # true rotate_ccw
        [0, 0, 7, 3],  # true bounce
        [1, 1, 2, 6],
    ]  # true oscillate
    split = motion_split(classes, matrix)
    assert split["spin_vs_translation"] == pytest.approx((6 + 2 + 4 + 4 + 7 + 3 + 2 + 6) / 40)
    assert split["rotation_sense"] == pytest.approx((6 + 4) / (6 + 2 + 4 + 4))
    assert split["translation_kind"] == pytest.approx((7 + 6) / (7 + 3 + 2 + 6))
    reordered = [classes[i] for i in (2, 0, 3, 1)]  # the split follows the names, not the order
    assert motion_split(reordered, [[matrix[i][j] for j in (2, 0, 3, 1)] for i in (2, 0, 3, 1)]) == pytest.approx(split)
    assert motion_split(["a", "b", "c"], [[1, 0, 0]] * 3) is None  # not the synthetic motion task


def test_table_and_plots_are_written(demo):
    out, results = demo
    table = (out / "results.md").read_text()
    header = "| method | training FLOPs | steps | wall time | motion attentive | motion linear (frames) |"
    assert header + " motion kNN (frames) | appearance linear (frames) | appearance kNN (frames) |" in table
    assert "| chance | - | - | - | 25.0 | 25.0 | 25.0 | 25.0 | 25.0 |" in table  # no attentive appearance column
    assert "| method | probe | spinning vs translating | rotation sense | which translation |" in table
    assert "| V-JEPA + VICReg | attentive | " in table and "| V-JEPA + VICReg | kNN (frames) | " in table
    curve_header = "| curve | step | training FLOPs | motion linear (frames) | appearance linear (frames) |"
    assert curve_header in table and "| random init | 0 | 0 | " in table and "| V-JEPA + VICReg | 2 | " in table
    teacher, student = results["runs"]["salt_teacher"]["steps"], results["runs"]["salt_student"]["steps"]
    assert "| SALT (teacher + student) + VICReg | " in table and f" | {teacher} + {student} | " in table
    for name in ("loss_curves.png", "accuracy_vs_flops.png", "masks.png"):
        assert (out / name).stat().st_size > 1000 and str(out / name) in results["plots"]


def test_running_again_trains_and_probes_nothing(demo):
    out, first = demo
    before = snapshot(out)
    again = run_demo(settings(out), log=lambda _: None)
    assert snapshot(out) == before
    for name in METHODS:
        assert not again["runs"][name]["trained_now"]
        assert again["runs"][name]["wall_s"] == first["runs"][name]["wall_s"]
    assert again["rows"] == first["rows"]


def test_other_settings_are_refused_in_the_same_folder(demo):
    out, _ = demo
    with pytest.raises(UserError, match="other settings.*seed: 0 -> 1"):
        run_demo(settings(out, seed=1), log=lambda _: None)


def test_demo_help_and_arguments(cli):
    from videojepa.cli.demo import settings_from_args
    from videojepa.cli.main import build_parser

    with pytest.raises(SystemExit) as exit_info:
        cli("demo", "--help")
    assert exit_info.value.code == 0
    args = build_parser().parse_args(["demo", "--quick", "--budget-steps", "7", "--set", "train.lr=1e-3"])
    s = settings_from_args(args)
    assert s.out == "runs/demo" and s.size.budget_steps == 7 and s.pretrain_overrides == ("train.lr=1e-3",)
    points = settings_from_args(build_parser().parse_args(["demo", "--curve-points", "0.1,0.6"]))
    assert points.size.curve_fractions == (0.1, 0.6) and points.size.snapshot_steps(10) == [1, 6]
    assert settings_from_args(build_parser().parse_args(["demo", "--curve-points", ""])).size.curve_fractions == ()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--curve-points", "0.5,1.0"])
    from videojepa.demo import SIZES

    assert s.size.num_videos == SIZES["quick"].num_videos


def test_bad_settings_fail_before_anything_is_written(tmp_path):
    import dataclasses

    with pytest.raises(UserError, match="teacher-share"):
        run_demo(settings(tmp_path / "demo", size=dataclasses.replace(SIZE, teacher_share=1.5)), log=lambda _: None)
    assert not (tmp_path / "demo").exists()
