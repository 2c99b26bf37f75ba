import pytest
import torch
from conftest import tiny_overrides

from videojepa.config import load_config
from videojepa.train.trainer import Trainer


def steps_of(trainer, count):
    trainer.build_data()
    batches = iter(trainer.loader)
    lengths, losses = [], []
    for _ in range(count):
        batch = next(batches)
        lengths.append(tuple(m.context.shape[1] for m in batch["masks"]))
        losses.append(trainer.train_step(trainer.video_to_device(batch), list(batch["masks"]))["loss"])
    return lengths, losses


def test_compile_covers_every_block_reuses_graphs_and_matches_eager(tiny_synth, tmp_path, one_thread):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    compiled = Trainer(
        load_config(
            "demo/vjepa",
            tiny_overrides(
                tiny_synth, tmp_path / "compiled", **{"train.compile": True, "train.compile_backend": "aot_eager"}
            ),
        )
    )
    blocks = [
        m
        for net in (compiled.method.encoder, compiled.method.target_encoder, compiled.method.predictor)
        for m in net.blocks
    ]
    assert all(getattr(b, "_compiled_call_impl", None) is not None for b in blocks)
    lengths, losses = steps_of(compiled, 2)
    graphs_after_two = counters["stats"]["unique_graphs"]
    more_lengths, more_losses = steps_of(compiled, 3)
    assert graphs_after_two > 0  # the encoder path (embed / forward_tokens) runs compiled code
    assert len(set(lengths + more_lengths)) > 1  # the masks changed length ...
    assert counters["stats"]["unique_graphs"] == graphs_after_two  # ... without a recompile
    eager = Trainer(load_config("demo/vjepa", tiny_overrides(tiny_synth, tmp_path / "eager")))
    assert steps_of(eager, 2)[1] == pytest.approx(losses, rel=1e-4)
