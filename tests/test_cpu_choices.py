"""`precision: auto` and the CPU attention kernel are chosen by a probe on this machine, cached per machine,
and recorded in the run (stand-in probes decide here, so the tests hold on any CPU)."""

import logging

import pytest
import torch
import yaml

from videojepa.config import load_config
from videojepa.errors import UserError
from videojepa.models import blocks
from videojepa.train.distributed import DistInfo
from videojepa.train.trainer import Trainer
from videojepa.utils import precision


@pytest.fixture
def probe(monkeypatch, tmp_path):
    """Stand-in timings for the two probes (seconds per dtype / kernel); counts the probes run."""
    monkeypatch.setenv("VIDEOJEPA_CACHE_DIR", str(tmp_path / "cache"))
    state = {"matmul": {"fp32": 1.0, "bf16": 2.0}, "attention": {"sdpa": 1.0, "matmul": 2.0}, "runs": 0}

    def matmul():
        state["runs"] += 1
        return dict(state["matmul"])

    monkeypatch.setattr(precision, "matmul_seconds", matmul)
    monkeypatch.setattr(precision, "attention_seconds", lambda: dict(state["attention"]))
    precision.forget_choices()
    yield state
    precision.forget_choices()  # the next tests read the machine's own choices again


def test_auto_takes_fp32_where_bf16_is_slower_and_bf16_where_it_is_faster(probe, monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger="videojepa"):
        assert precision.resolve_precision("auto", "cpu") == "fp32"  # bf16 2x slower
    assert "precision auto = fp32 (bf16 matmul 0.50x the fp32 speed" in caplog.text
    precision.forget_choices()
    monkeypatch.setattr(precision, "machine_key", lambda: "another CPU | torch 9 | 2 threads")
    probe["matmul"] = {"fp32": 2.0, "bf16": 1.0}
    assert precision.resolve_precision("auto", "cpu") == "bf16"  # bf16 2x faster, another machine
    precision.forget_choices()
    probe["matmul"] = {"fp32": 1.05, "bf16": 1.0}
    monkeypatch.setattr(precision, "machine_key", lambda: "a third CPU | torch 9 | 2 threads")
    assert precision.resolve_precision("auto", "cpu") == "fp32"  # 5% is not worth bf16's rounding
    assert probe["runs"] == 3
    assert precision.resolve_precision("auto", "cuda") == "bf16"
    assert (
        precision.resolve_precision("fp32", "cuda") == "fp32" and precision.resolve_precision("bf16", "cpu") == "bf16"
    )


def test_the_choice_is_cached_per_machine(probe):
    assert precision.resolve_precision("auto", "cpu") == "fp32"
    cache = yaml.safe_load(precision.cache_file().read_text())
    key = precision.machine_key()
    assert key in cache and cache[key]["precision"] == "fp32" and cache[key]["bf16_over_fp32_speed"] == 0.5
    assert f"torch {torch.__version__}" in key and f"{torch.get_num_threads()} threads" in key
    probe["matmul"] = {"fp32": 2.0, "bf16": 1.0}  # the machine "changed", the cache did not
    precision.forget_choices()  # a new process
    assert precision.resolve_precision("auto", "cpu") == "fp32" and probe["runs"] == 1


def test_the_attention_kernel_follows_the_probe(probe, monkeypatch):
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(blocks.F, "scaled_dot_product_attention", lambda *a: calls.append(1) or sdpa(*a))
    q, k, v = (torch.randn(1, 2, 16, 8, dtype=torch.bfloat16) for _ in range(3))
    fused = blocks.attention(q, k, v)  # the stand-in measured the fused kernel faster
    assert len(calls) == 1
    precision.forget_choices()
    probe["attention"] = {"sdpa": 2.0, "matmul": 1.0}
    monkeypatch.setattr(precision, "machine_key", lambda: "another CPU")
    explicit = blocks.attention(q, k, v)
    assert len(calls) == 1  # the explicit matmul path
    torch.testing.assert_close(fused.float(), explicit.float(), atol=2e-2, rtol=0)
    blocks.attention(q.float(), k.float(), v.float())  # fp32 always takes the fused kernel
    assert len(calls) == 2


def tiny_config(run_dir, precision_setting):
    overrides = {
        "run.dir": run_dir,
        "model.name": "vit_pico",
        "model.patch_size": 8,
        "data.crop_size": 32,
        "data.frames_per_clip": 8,
        "predictor.depth": 1,
        "predictor.embed_dim": 32,
        "predictor.num_heads": 2,
        "train.batch_size": 2,
        "train.precision": precision_setting,
    }
    return load_config("demo/vjepa", [f"{k}={v}" for k, v in overrides.items()])


def test_a_run_records_the_resolved_precision_and_keeps_it_on_resume(probe, tmp_path, monkeypatch):
    from videojepa.config.loader import save_config

    run = tmp_path / "run"
    cfg = tiny_config(run, "auto")
    assert cfg.train.precision == "auto"  # the default
    trainer = Trainer(cfg, dist_info=DistInfo())
    assert trainer.cfg.train.precision == "fp32" and trainer.autocast_dtype is None
    assert trainer.precision_note.startswith("train.precision fp32 (auto: bf16 matmul 0.50x the fp32 speed")
    assert cfg.train.precision == "auto"  # the caller's config is left as given
    trainer.prepare_run_dir()
    save_config(trainer.cfg, run / "config.yaml")  # what start() saves
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["precision"] == "fp32"
    # resumed on a machine whose probe says bf16: the run keeps the precision it was trained in
    precision.forget_choices()
    monkeypatch.setattr(precision, "machine_key", lambda: "a bf16 CPU")
    probe["matmul"] = {"fp32": 2.0, "bf16": 1.0}
    assert precision.resolve_precision("auto", "cpu") == "bf16"
    resumed = Trainer(tiny_config(run, "auto"), dist_info=DistInfo())
    assert resumed.cfg.train.precision == "fp32" and "recorded in" in resumed.precision_note
    resumed.prepare_run_dir()  # no conflict
    fresh = Trainer(tiny_config(tmp_path / "new", "auto"), dist_info=DistInfo())
    assert fresh.cfg.train.precision == "bf16" and fresh.autocast_dtype == torch.bfloat16
    # an explicit precision other than the recorded one is refused, naming the key
    with pytest.raises(UserError, match="train.precision: run has 'fp32', now 'bf16'"):
        Trainer(tiny_config(run, "bf16"), dist_info=DistInfo()).prepare_run_dir()
