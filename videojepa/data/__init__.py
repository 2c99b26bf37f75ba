"""Video data pipeline: decode (readers) → sample clip indices (sampling) → augment (transforms),
wrapped as datasets (datasets), weighted mixtures of them (mixture), built from a config's source (build),
and resumable loaders (loader); plus
synthetic data (synth), dataset checks (check), prepared copies with a frame-table manifest (prepare,
manifest) and the CPU cost per clip (bench).

    from videojepa.data import DataConfig, build_dataset, build_loader
    ds = build_dataset("data/motion/train.csv", cfg, train=True)
    loader = build_loader(ds, batch_size=8, data_cfg=cfg, seed=0)
    batch = next(iter(loader))  # {"video": B×C×T×H×W, "label": B, "index": B}
"""

from videojepa.data.build import build_dataset, build_mixture
from videojepa.data.config import DataConfig, DataSource
from videojepa.data.datasets import BadInputWarning, Entry, TooManyBadFilesError, VideoDataset, read_entries
from videojepa.data.loader import ResumableLoader, ResumableSampler, build_loader
from videojepa.data.mixture import MixtureDataset
from videojepa.data.readers import (
    BadFileError,
    FrameIndex,
    PyAVReader,
    VideoReader,
    open_video,
    read_image,
    register_backend,
)
from videojepa.data.sampling import clip_step, sample_clips
from videojepa.data.transforms import ClipTransform

__all__ = [
    "BadFileError",
    "BadInputWarning",
    "ClipTransform",
    "DataConfig",
    "DataSource",
    "Entry",
    "FrameIndex",
    "MixtureDataset",
    "PyAVReader",
    "ResumableLoader",
    "ResumableSampler",
    "TooManyBadFilesError",
    "VideoDataset",
    "VideoReader",
    "build_dataset",
    "build_loader",
    "build_mixture",
    "clip_step",
    "open_video",
    "read_entries",
    "read_image",
    "register_backend",
    "sample_clips",
]
