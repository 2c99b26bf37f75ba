"""`videojepa data bench`: CPU cost per clip, and the workers / cores for a target rate or a run's rate."""

import json
import math

import pytest

from videojepa.data import DataConfig
from videojepa.data.bench import SourceCost, measure_source
from videojepa.train.logger import MetricsWriter, step_rate


def test_workers_and_cores_follow_the_cost_per_clip():
    cost = SourceCost("x", 10, decode_ms=40.0, augment_ms=9.0, total_ms=49.0, wall_ms=50.0)
    assert cost.clips_per_s_per_worker == pytest.approx(1000 / 49)
    assert cost.workers_for(200) == 10  # 200 clips/s x 49 ms = 9.8 cores of work
    assert cost.workers_for(200) * cost.clips_per_s_per_worker >= 200
    assert (cost.workers_for(200) - 1) * cost.clips_per_s_per_worker < 200  # not one more than needed
    assert cost.workers_for(1) == 1


def test_measure_source_splits_decode_and_augment(tiny_synth, one_thread):
    cfg = DataConfig(crop_size=32, frames_per_clip=8, frame_step=2)
    cost = measure_source(str(tiny_synth / "motion" / "train.csv"), cfg, clips=6)
    assert cost.clips == 6 and cost.bad == 0 and not cost.manifest
    assert cost.decode_ms > 0 and cost.augment_ms > 0
    assert cost.total_ms >= max(cost.decode_ms, cost.augment_ms)


def write_run(run_dir, records):
    writer = MetricsWriter(run_dir / "metrics.jsonl", None)
    for step, (rate, wait) in enumerate(records, 1):
        writer.write("step", {"step": step, "loss": 1.0})
        writer.write("log", {"step": step, "loss": 1.0, "clips_per_s": rate, "data_wait_fraction": wait})
    writer.close()


def test_target_from_a_run_is_its_step_rate_without_data_wait(tmp_path):
    write_run(tmp_path, [(5.0, 0.9), (100.0, 0.5), (90.0, 0.5), (110.0, 0.5)])  # the first window: start-up
    rate, stats = step_rate(str(tmp_path))
    assert rate == pytest.approx(200.0) and stats["records"] == 3
    assert stats["logged_clips_per_s"] == 100.0 and stats["data_wait_fraction"] == 0.5


def test_bench_cli_with_a_run_and_two_sources(cli, tiny_synth, tmp_path):
    write_run(tmp_path, [(1.0, 0.0), (40.0, 0.2), (40.0, 0.2)])
    sources = [tiny_synth / "motion" / "train.csv", tiny_synth / "motion" / "val.csv"]
    code, out, err = cli(
        "data",
        "bench",
        *sources,
        "--crop-size",
        "32",
        "--frames-per-clip",
        "8",
        "--frame-step",
        "2",
        "--clips",
        "4",
        "--run",
        tmp_path,
        "--weights",
        "3",
        "1",
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["target_clips_per_s"] == pytest.approx(50.0)
    for row in report["sources"]:
        assert row["workers"] == math.ceil(50.0 * row["total_cpu_ms"] / 1000) and row["cores"] == row["workers"] + 1
    a, b = (row["total_cpu_ms"] for row in report["sources"])
    assert report["mixture"]["total_cpu_ms"] == pytest.approx((3 * a + b) / 4, abs=0.01)
    code, out, _ = cli("data", "bench", sources[0], "--crop-size", "32", "--frames-per-clip", "8", "--clips", "2")
    assert code == 0 and "workers and cores for 200 clips/s" in out and "decode" in out
    code, _, err = cli("data", "bench", sources[0], "--run", tmp_path / "nowhere")
    assert code == 2 and "no metrics.jsonl there" in err
    code, _, err = cli("data", "bench", *sources, "--weights", "1")
    assert code == 2 and "one positive weight per source" in err


def test_check_reports_each_source(cli, tiny_synth):
    code, out, _ = cli("data", "check", tiny_synth / "motion" / "train.csv", tiny_synth / "motion" / "val.csv")
    assert code == 0
    assert out.count("== ") == 2 and out.count("checked ") == 2
