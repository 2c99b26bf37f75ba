"""The fine-tuning task the trainer trains: an encoder and a classification head, end to end.

    model = Classification(cfg, encoder, num_classes=4)
    loss, metrics = model(video, target)       # clips (B, C, T, H, W), soft targets (B, classes)
    logits = model.logits(video)

It is a `TrainingTask` to the trainer (`videojepa.train.task`: networks with roles, `export_encoder`,
`health_encoder`, ...), not a pretraining method: it names its batch entries (video, target), builds its own
training data (repeated augmentation, RandAugment, erasing, mixup / cutmix, label smoothing: `finetune.data`)
and its own optimiser (AdamW with layer-wise lr decay: `finetune.layer_decay`). With `finetune.freeze_encoder`
the encoder's role is "frozen": outside the optimiser, in eval mode, bitwise unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from videojepa.data.augment import ClipAugment
from videojepa.data.build import build_dataset
from videojepa.finetune.data import AugmentedClips, MixingCollate
from videojepa.finetune.head import ClassifierHead
from videojepa.finetune.layer_decay import layer_decay_groups
from videojepa.finetune.mixup import MixSettings
from videojepa.flops import StepShape, context_encoder_flops, forward_flops
from videojepa.models.blocks import DropPath
from videojepa.models.roles import NetworkRoles


def set_drop_path(encoder: nn.Module, rate: float) -> None:
    """Stochastic depth on an already built encoder (a loaded one has none): rates 0 .. rate over its blocks,
    as `VisionTransformer(drop_path=rate)` sets them."""
    depth = len(encoder.blocks)
    for i, block in enumerate(encoder.blocks):
        p = rate * i / max(depth - 1, 1)
        block.drop_path = DropPath(p) if p > 0 else nn.Identity()


class Classification(NetworkRoles):
    name = "finetune"
    batch_keys = ("video", "target")
    networks = {"encoder": "trained", "head": "trained"}

    def __init__(self, cfg, encoder: nn.Module, num_classes: int, classes: list[str] | None = None):
        super().__init__()
        self.cfg = cfg
        f = cfg.finetune
        self.encoder = encoder
        set_drop_path(encoder, cfg.model.drop_path)
        encoder.activation_checkpointing = cfg.train.activation_checkpointing
        self.head = ClassifierHead(f.head, encoder.embed_dim, num_classes, f.heads, f.head_dropout)
        self.num_classes, self.classes = num_classes, list(classes or [])
        if f.freeze_encoder:
            self.networks = {"encoder": "frozen", "head": "trained"}
            encoder.requires_grad_(False)
        else:
            encoder.requires_grad_(True)

    def logits(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(video))

    def forward(self, video: torch.Tensor, target: torch.Tensor):
        logits = self.logits(video)
        loss = torch.sum(-target * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
        agree = (logits.argmax(-1) == target.argmax(-1)).float().mean()  # against the strongest label of the mix
        return loss, {"train_top1": agree.detach()}

    # --------------------------------------------------------------- what the trainer calls (TrainingTask)
    def after_step(self, step: int) -> dict:
        return {}

    def export_encoder(self) -> nn.Module:
        return self.encoder

    def health_encoder(self) -> nn.Module:
        return self.encoder

    def shard_frozen(self, cfg) -> bool:
        return False  # a frozen encoder is replicated like a teacher

    def training_data(self, cfg):
        a = cfg.augment
        augment = ClipAugment(
            tuple(cfg.data.mean),
            tuple(cfg.data.std),
            a.randaugment_n,
            a.randaugment_m,
            a.randaugment_mstd,
            a.erase_prob,
        )
        dataset = AugmentedClips(build_dataset(cfg.data.train, cfg.data, train=True), a.repeated, augment)
        collate = MixingCollate(
            self.num_classes, MixSettings(a.mixup, a.cutmix, a.mix_prob, a.switch_prob), a.label_smoothing, cfg.run.seed
        )
        return dataset, collate

    def build_optimizer(self, train_cfg) -> torch.optim.AdamW:
        named = [
            (f"{attr}.{n}", p)
            for attr, role in self.networks.items()
            if role == "trained"
            for n, p in getattr(self, attr).named_parameters()
        ]
        groups = layer_decay_groups(named, len(self.encoder.blocks), self.cfg.finetune.layer_decay)
        for group in groups:
            group.pop("names")
        params = [p for g in groups for p in g["params"]]
        fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params) or None
        return torch.optim.AdamW(
            groups,
            lr=train_cfg.lr,
            betas=train_cfg.betas,
            eps=train_cfg.eps,
            weight_decay=train_cfg.weight_decay,
            fused=fused,
        )

    def flops_per_clip(self, cfg) -> tuple[float, float]:
        """The encoder over all tokens of a clip, trained (x6 per parameter and token) or frozen (x2)."""
        grid = self.encoder.grid(cfg.data.frames_per_clip, cfg.data.crop_size, cfg.data.crop_size)
        tokens = grid[0] * grid[1] * grid[2]
        shape = StepShape(batch=1, tokens_per_clip=tokens, lengths=[(tokens, 0)])
        part = (
            forward_flops("encoder", self.encoder, shape)
            if self.cfg.finetune.freeze_encoder
            else context_encoder_flops(self.encoder, shape)
        )
        return part.flops, part.flops + part.attention_flops
