"""What every pretraining method provides: to the method-agnostic trainer (the `TrainingTask` protocol,
`videojepa.train.task`), and to the config and the accountants.

A method is an nn.Module that owns its networks and turns one batch into a loss:

    loss, metrics = method(video, masks)      # masks: list of MaskIndices, one per generator

and declares, as class attributes and classmethods, what the rest of the library needs:
- `name`: its key in the registry (`method.name` in configs);
- `networks`: attribute -> role, "trained" (in the optimiser), "ema" (a moving average of a trained
  network, named in `ema_of`) or "frozen" (fixed weights) (`videojepa.models.roles`); the trainer wraps each
  by its role (DDP, or FSDP2 per block);
- `config_section`: the class of its `method:` config section (`name` and its own keys, with their rules);
- `check_config(cfg)`: its rules across config sections (raise ConfigError), run by the trainer and the CLI;
- the accounting hooks: `flops_components(cfg, shape)` (what one optimiser step computes),
  `meta_networks(cfg)` and `target_architecture(cfg)` (its networks' architectures on the meta device).

What the trainer calls (`TrainingTask`), with the defaults every pretraining method keeps: `batch_keys` (the
loader batch entries its forward takes: video and masks), `training_data(cfg)` (the training dataset and its
collate function), `build_optimizer(train_cfg)`, `after_step(step)` after every optimiser step (V-JEPA's EMA
update; returns metrics to log), `export_encoder()` (the network evaluation uses), `health_encoder()` (the
network whose features the collapse monitors watch), `shard_frozen(cfg)` and `flops_per_clip(cfg)` (for the
achieved FLOP/s report). `build_method(cfg)` also starts it from `model.init` (`initialize_from`).
"""

from __future__ import annotations

from torch import nn

from videojepa.config.schema import MethodSection, PretrainConfig
from videojepa.data.build import build_dataset
from videojepa.encoder_io import PREDICTOR_FILE, load_encoder, load_predictor, load_state_strict
from videojepa.errors import UserError
from videojepa.masks import MaskCollator, build_mask_generators
from videojepa.methods import accounting
from videojepa.models.predictor import PixelDecoder, Predictor
from videojepa.models.registry import build_encoder
from videojepa.models.roles import NetworkRoles
from videojepa.optim import adamw


def build_method_encoder(cfg: PretrainConfig) -> nn.Module:
    return build_encoder(cfg.model, activation_checkpointing=cfg.train.activation_checkpointing)


def build_head(cfg: PretrainConfig, in_dim: int, out_dim: int | None = None) -> nn.Module:
    """The predictor (out_dim given) or pixel decoder (out_dim None) that follows the encoder."""
    p = cfg.predictor
    kwargs = dict(
        embed_dim=p.embed_dim,
        depth=p.depth,
        num_heads=p.num_heads,
        mlp_ratio=p.mlp_ratio,
        num_mask_tokens=len(cfg.masks),
        pos_embed=cfg.model.pos_embed,
        activation_checkpointing=cfg.train.activation_checkpointing,
        zero_init_mask_tokens=p.zero_init_mask_tokens,
    )
    if out_dim is None:
        return PixelDecoder(in_dim, cfg.model.tubelet_size, cfg.model.patch_size, **kwargs)
    return Predictor(in_dim, out_dim, **kwargs)


class Method(NetworkRoles):
    name: str = ""
    head_attr = "head"  # the attribute holding the network after the encoder
    config_section: type[MethodSection] = MethodSection  # its `method:` keys (a subclass adds its own)

    def __init__(self, cfg: PretrainConfig):
        super().__init__()
        self.cfg = cfg

    @classmethod
    def check_config(cls, cfg: PretrainConfig) -> None:
        """Rules of this method across config sections (its own keys are its section's); raise ConfigError
        naming the key."""

    @classmethod
    def shard_frozen(cls, cfg: PretrainConfig) -> bool:
        """Under FSDP2, shard the frozen networks too (default: replicate them)."""
        return False

    @classmethod
    def meta_networks(cls, cfg: PretrainConfig) -> tuple[nn.Module, nn.Module]:
        """(encoder, head): the networks that run with gradients, built on the meta device by the method's own
        builders (for the FLOPs and memory accountants)."""
        raise UserError(
            f"method {cls.name!r} declares no meta_networks(cfg): the accountants need the "
            f"architectures of the networks it trains"
        )

    @classmethod
    def target_architecture(cls, cfg: PretrainConfig) -> nn.Module | None:
        """The network its EMA target or frozen teacher has (None: it has neither)."""
        return None

    batch_keys: tuple[str, ...] = ("video", "masks")

    def training_data(self, cfg: PretrainConfig):
        """(dataset, collate_fn) of the training loader: data.train as uint8 items (the trainer flips and
        normalises them on the device) and a MaskCollator over the config's mask generators."""
        return (
            build_dataset(cfg.data.train, cfg.data, train=True, uint8=True),
            MaskCollator(build_mask_generators(cfg), seed=cfg.run.seed),
        )

    def build_optimizer(self, train_cfg):
        """AdamW over the trained networks with V-JEPA's weight-decay groups."""
        return adamw.build_optimizer(self.trainable_parameters(), train_cfg)

    def flops_per_clip(self, cfg: PretrainConfig) -> tuple[float, float]:
        """Training FLOPs per clip by the paper's rule and with attention (UserError when not countable)."""
        flops = accounting.stage_flops(cfg, measured_masks=True)
        batch = cfg.train.batch_size
        return flops["flops_per_step"] / batch, flops["flops_per_step_with_attention"] / batch

    def initialize_from(self, folder: str) -> list[str]:
        """Start from the weights in `folder` (a run directory or a `videojepa convert` output): its encoder
        into `encoder` and every EMA network that follows it, and its predictor, when it has one, into
        `predictor`. Strict: an architecture other than the config's is a one-line error naming model.init.
        Returns the networks loaded."""
        from pathlib import Path

        def check(loaded: nn.Module, own: nn.Module, what: str) -> None:
            theirs = {k: v for k, v in loaded.arch.items() if k != "name"}
            ours = {k: v for k, v in own.arch.items() if k != "name"}
            differ = {k: (theirs.get(k), ours.get(k)) for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k)}
            if differ:
                raise UserError(
                    f"model.init: the {what} in {folder} does not match the config's "
                    f"({', '.join(f'{k}: {a} there, {b} here' for k, a, b in ((k, *v) for k, v in differ.items()))})"
                )

        encoder = load_encoder(folder)
        check(encoder, self.encoder, "encoder")
        load_state_strict(self.encoder, encoder.state_dict(), f"model.init: {folder}")
        loaded = ["encoder"]
        for target, source in self.ema_of.items():
            if source == "encoder":
                getattr(self, target).load_state_dict(self.encoder.state_dict())
                loaded.append(target)
        if Path(folder, PREDICTOR_FILE).is_file() and self.networks.get("predictor") == "trained":
            predictor = load_predictor(folder)
            check(predictor, self.predictor, "predictor")
            load_state_strict(self.predictor, predictor.state_dict(), f"model.init: {folder}/{PREDICTOR_FILE}")
            loaded.append("predictor")
        return loaded

    def after_step(self, step: int) -> dict:
        """Called after every optimiser step that was applied; returns metrics to log."""
        return {}

    def export_encoder(self) -> nn.Module:
        return self.encoder

    def health_encoder(self) -> nn.Module:
        return self.export_encoder()
