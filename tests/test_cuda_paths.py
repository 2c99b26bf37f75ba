"""The CUDA paths, tested where no GPU is: stand-ins count what a GPU would pay for (host syncs,
host-to-device copies) and refuse what it cannot do (.numpy() of a device tensor)."""

import math
import sys
from pathlib import Path

import pytest
import torch

from videojepa.config import load_config
from videojepa.masks import MaskCollator, MaskIndices, build_mask_generators
from videojepa.train.distributed import DistInfo
from videojepa.train.trainer import Trainer, host_values

PACKAGE = str(Path(__import__("videojepa").__file__).parent)
# every way a tensor's value reaches Python: on CUDA each one waits for the GPU to finish its queue
HOST_READS = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__", "__format__")


class HostReads:
    """Counts host reads of tensors made by videojepa's own code (PyTorch's internals are not ours to count)."""

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        for name in HOST_READS:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self.wrap(name, original))

    def wrap(self, name, original):
        def read(tensor, *args, **kwargs):
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(PACKAGE):
                self.calls.append(f"{name} at {Path(caller.f_code.co_filename).name}:{caller.f_lineno}")
            return original(tensor, *args, **kwargs)

        return read


def tiny_trainer(tmp_path, **extra):
    overrides = {
        "run.dir": tmp_path,
        "model.name": "vit_pico",
        "model.patch_size": 8,
        "data.crop_size": 32,
        "data.frames_per_clip": 8,
        "predictor.depth": 1,
        "predictor.embed_dim": 32,
        "predictor.num_heads": 2,
        "train.batch_size": 4,
        "train.precision": "fp32",
        "method.feature_reg": 1.0,  # one more metric
        **extra,
    }
    cfg = load_config("demo/vjepa", [f"{k}={v}" for k, v in overrides.items()])
    trainer = Trainer(cfg, dist_info=DistInfo())
    video = torch.randn(4, 3, 8, 32, 32)
    masks = [MaskIndices(m.context, m.target) for m in MaskCollator(build_mask_generators(cfg), seed=0).sample(4, 0)]
    return trainer, video, masks


def test_a_training_step_reads_the_device_once_whatever_its_metrics_and_micro_steps(tmp_path, monkeypatch):
    trainer, video, masks = tiny_trainer(tmp_path, **{"train.accum_steps": 2})
    trainer.train_step(video, masks)  # warm-up (lazy set-ups)
    reads = HostReads(monkeypatch)
    record = trainer.train_step(video, masks)
    # the skip decision needs the loss and the gradient norm: one stacked read; the metrics stay tensors
    assert reads.calls == [reads.calls[0]] and reads.calls[0].startswith("tolist at trainer.py")
    metrics = [k for k, v in record.items() if torch.is_tensor(v)]
    assert {"loss_mask0", "loss_mask1", "target_std", "feature_reg"} <= set(metrics)
    reads.calls.clear()
    values = host_values(record)  # at a log step: all of them in one read
    assert len(reads.calls) == 1 and all(isinstance(values[k], float) for k in metrics)
    assert math.isfinite(values["loss"]) and values["loss"] == record["loss"]


def test_negative_control_reading_every_metric_is_counted(tmp_path, monkeypatch):
    """The counter sees what the previous trainer did: a float() per metric per micro-step."""
    trainer, video, masks = tiny_trainer(tmp_path)
    record = trainer.train_step(video, masks)
    reads = HostReads(monkeypatch)
    exec(  # compiled under videojepa's path, so that the counter takes it for the package's own code
        compile("[float(v) for v in record.values() if torch.is_tensor(v)]", f"{PACKAGE}/stand_in.py", "exec"),
        {"record": record, "torch": torch},
    )
    assert len(reads.calls) == sum(torch.is_tensor(v) for v in record.values()) >= 4


def test_the_step_builds_no_tensor_from_python_numbers(tmp_path, monkeypatch):
    """torch.tensor(3.0, device=cuda) is a host-to-device copy: the pageable memory it is copied from makes
    the host wait. The step (losses included, the pixel methods' targets too) makes none."""
    made = []
    for name in ("tensor", "as_tensor"):
        original = getattr(torch, name)

        def build(data, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(PACKAGE) and not torch.is_tensor(data):
                made.append(f"torch.{_name} in {Path(caller).name}")
            return _original(data, *args, **kwargs)

        monkeypatch.setattr(torch, name, build)
    for method in ("vjepa", "salt_teacher"):
        extra = {"method.name": method, "method.feature_reg": 1.0}
        trainer, video, masks = tiny_trainer(tmp_path / method, **extra)
        trainer.train_step(video, masks)
    assert made == []


def test_pixel_targets_equal_the_broadcast_formula():
    from videojepa.methods.losses import pixel_targets

    torch.manual_seed(0)
    video = torch.randn(2, 3, 4, 16, 16)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    # the tubelet-normalised targets of VideoMAE, written out: undo the input normalisation, then each
    # tubelet's pixels minus their mean over their own unbiased std
    pixels = video * torch.tensor(std).view(1, 3, 1, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1, 1)
    tubes = pixels.reshape(2, 3, 2, 2, 2, 8, 2, 8).permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(2, 8, 2 * 8 * 8, 3)
    expected = ((tubes - tubes.mean(2, keepdim=True)) / (tubes.var(2, keepdim=True).sqrt() + 1e-6)).flatten(2)
    torch.testing.assert_close(pixel_targets(video, 2, 8, mean, std), expected, rtol=0, atol=1e-5)


def test_rope_frequencies_are_copied_to_a_device_once():
    from videojepa.models.pos_embed import Rope3D, token_coords

    rope = Rope3D(head_dim=24)
    coords = token_coords(torch.arange(12).expand(2, -1), (3, 2, 2))
    first = rope.tables(coords)
    assert rope.omega_on(torch.device("meta")) is rope.omega_on(torch.device("meta"))  # one copy per device
    assert rope.omega_on(coords.device) is rope.omega_on(coords.device)
    for a, b in zip(first, rope.tables(coords)):
        assert torch.equal(a, b)


class DeviceTensor(torch.Tensor):
    """A tensor that behaves as a CUDA tensor does on the way to numpy: `.numpy()` refuses, `.cpu()` copies."""

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor")

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor).clone()


class OnDevice(torch.nn.Module):
    """An encoder whose outputs live 'on the device'."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.tubelet_size, self.embed_dim, self.depth = encoder.tubelet_size, encoder.embed_dim, encoder.depth

    def forward(self, clips, layers):
        return [t.as_subclass(DeviceTensor) for t in self.encoder(clips, layers=layers)]


def test_extraction_copies_device_features_to_the_host():
    from videojepa import create_model
    from videojepa.eval.extract import window_features

    encoder = OnDevice(create_model("vit_pico", patch_size=8).eval())
    clips = torch.randn(2, 3, 8, 32, 32)
    with pytest.raises(TypeError, match="cuda"):  # the stand-in refuses as CUDA does (negative control)
        encoder(clips, [-1])[0].numpy()
    rows = window_features(encoder, clips, [-1], "mean", "fp32")
    expected = encoder.encoder(clips, layers=[-1])[0].mean(1)
    assert rows.shape == (2, encoder.embed_dim)
    assert torch.allclose(torch.from_numpy(rows), expected, atol=1e-6)


def test_tf32_for_fp32_matmuls_on_cuda():
    from videojepa.train.distributed import use_tf32

    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        use_tf32()
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert torch.backends.mkldnn.matmul.fp32_precision in ("none", "ieee")  # CPU matmuls untouched
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_the_process_group_is_bound_to_its_gpu(monkeypatch):
    import torch.distributed as dist

    from videojepa.train import distributed

    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    monkeypatch.setattr(distributed, "use_tf32", lambda: calls.append(("tf32",)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda *a, **k: calls.append(("init", a, k)))
    info = distributed.init_distributed()
    cuda1 = torch.device("cuda", 1)
    assert info.device == cuda1 and info.rank == 1
    assert calls == [("set_device", cuda1), ("tf32",), ("init", ("nccl",), {"device_id": cuda1})]
    # CPU: gloo, no device
    calls.clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.init_distributed().device == torch.device("cpu")
    assert calls == [("init", ("gloo",), {})]


@pytest.mark.parametrize(
    "cores,ranks,workers", [(16, None, 15), (16, "8", 1), (64, "4", 15), (2, None, 1), (1, None, 0)]
)
def test_loader_workers_default_from_the_cores(monkeypatch, cores, ranks, workers):
    from videojepa.data.config import DataConfig

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    if ranks is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", ranks)
    assert DataConfig().num_workers == workers
    assert DataConfig(num_workers=3).num_workers == 3  # a set value is kept


def test_ddp_gradients_are_views_into_its_buckets(tmp_path):
    """gradient_as_bucket_view: after a backward each gradient lives inside DDP's all-reduce buffers."""
    import torch.distributed as dist

    from videojepa.train.parallel import wrap_for_training

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        trainer, video, masks = tiny_trainer(tmp_path / "run")
        model = wrap_for_training(trainer.method, trainer.cfg, DistInfo(world_size=2, grouped=True))
        assert model.gradient_as_bucket_view
        for _ in range(2):  # the views are in place from the second iteration on (DDP's note)
            loss, _ = model(video, masks)
            loss.backward()
        grads = [p.grad for p in trainer.method.encoder.parameters() if p.grad is not None]
        assert grads and all(g._is_view() for g in grads)
    finally:
        dist.destroy_process_group()
