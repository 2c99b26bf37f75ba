"""Fine-tuning's training data: repeated, RandAugmented, erased clips per video, and a mixing collate.

    dataset = AugmentedClips(build_dataset(...), repeats=2, augment=ClipAugment(...))
    collate = MixingCollate(num_classes, MixSettings(...), smoothing=0.1, seed=0)
    batch = collate([dataset[key] for key in keys])   # {"video": (B*R, C, T, H, W), "target": (B*R, classes), ...}

Per video (`AugmentedClips`): R clips (repeated augmentation, the paper's num_sample), each with its own
temporal sampling, crop and flip from the base dataset, then RandAugment (one plan for all frames of a
clip), then random erasing. Per batch (`MixingCollate`): label smoothing and mixup / cutmix. All the
randomness is a function of the sampler's key (index, seed, epoch) and of the batch's sample indices, so
a resumed run sees bit-identical batches.

RandAugment works on pixel values in [0, 1]: the base dataset's normalised clip is mapped back with the
data section's mean and std, augmented and normalised again (the crop comes first here, where VideoMAE
crops after RandAugment; both apply one transform to all frames).
"""

from __future__ import annotations

import numpy as np
import torch

from videojepa.data.augment import ClipAugment
from videojepa.finetune.mixup import MixSettings, mix_batch, smooth_one_hot
from videojepa.masks.collator import batch_seed


class AugmentedClips(torch.utils.data.Dataset):
    """R augmented clips of each video of a labelled `VideoDataset`; items {"video": (R, C, T, H, W),
    "label": (R,), "index": (R,)}."""

    def __init__(self, base, repeats: int, augment: ClipAugment | None):
        self.base, self.repeats, self.augment = base, repeats, augment
        self.train = True  # the loader shuffles

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key) -> dict:
        if isinstance(key, (tuple, list)):
            index, seed, epoch = (int(k) for k in key)
        else:  # a plain index: randomness from torch's generator, as the base dataset does
            index, seed, epoch = int(key), int(torch.randint(0, 2**62, ()).item()), 0
        clips, labels, used = [], [], []
        for r in range(self.repeats):
            item = self.base[(index, seed, epoch, r)]  # the base draws from (seed, epoch, r, index)
            video = item["video"]
            if self.augment is not None:
                video = self.augment(video, np.random.default_rng([seed, epoch, r, item["index"], 1]))
            clips.append(video)
            labels.append(item["label"])
            used.append(item["index"])
        return {"video": torch.stack(clips), "label": torch.tensor(labels), "index": torch.tensor(used)}


class MixingCollate:
    """Stack the videos' clips, smooth their labels and mix the batch (see `mixup`)."""

    def __init__(self, num_classes: int, settings: MixSettings, smoothing: float, seed: int):
        self.num_classes, self.settings, self.smoothing, self.seed = num_classes, settings, smoothing, seed

    def __call__(self, samples: list[dict]) -> dict:
        video = torch.cat([s["video"] for s in samples])
        labels = torch.cat([s["label"] for s in samples])
        index = torch.cat([s["index"] for s in samples])
        target = smooth_one_hot(labels, self.num_classes, self.smoothing)
        rng = np.random.default_rng(batch_seed(self.seed, index.tolist()))
        video, target, info = mix_batch(video, target, self.settings, rng)
        return {"video": video, "target": target, "label": labels, "index": index, "lam": torch.tensor(info["lam"])}
