import sys

import pytest
import torch

from videojepa.cli.main import main
from videojepa.encoder_io import save_encoder
from videojepa.models import create_model


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""

    def run(*argv):
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread is faster and immune to other processes on a shared CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def pico(tmp_path):
    """A saved vit_pico (width 64, 2 heads: 12 heads do not divide it) whose card says 4 frames at 32 px."""
    torch.manual_seed(0)
    encoder = create_model("vit_pico", patch_size=8)
    save_encoder(encoder, tmp_path / "pico" / "encoder.safetensors", data={"frames_per_clip": 4, "crop_size": 32})
    return tmp_path / "pico"


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """A small synthetic dataset (16 frames, 32 px) shared by the training tests."""
    from videojepa.data.synth import write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(str(out), num_videos=16, frames=16, size=32, seed=0, workers=1)
    return out


# two processes under torchrun; --standalone: each launch rendezvouses on a free port (a fixed one failed once
# when a second launch came right after the first)
TORCHRUN_2 = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def tiny_overrides(data_dir, run_dir, **extra):
    """Overrides that shrink a demo preset to a few-second CPU run."""
    settings = {
        "run.dir": run_dir,
        "data.train": f"{data_dir}/motion/train.csv",
        "data.val": f"{data_dir}/motion/val.csv",
        "data.crop_size": 32,
        "data.frames_per_clip": 8,
        "data.frame_step": 2,
        "data.num_workers": 0,
        "model.name": "vit_pico",
        "model.patch_size": 8,
        "predictor.depth": 1,
        "predictor.embed_dim": 32,
        "predictor.num_heads": 2,
        "train.batch_size": 4,
        "train.steps": 20,
        "train.warmup_steps": 2,
        "train.lr": 2e-3,
        "train.start_lr": 2e-3,
        "train.log_every": 5,
        "train.checkpoint_every": 10,
        "train.precision": "fp32",
    }
    settings.update(extra)
    return [f"{k}={v}" for k, v in settings.items()]
