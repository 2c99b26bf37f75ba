"""Probes on a frozen encoder's features, registered by kind (`probe.kind`).

    probe = build_probe("attentive", dim=384, num_classes=10)    # tokens (B, N, D) -> logits (B, 10)
    probe = build_probe("linear", dim=384, num_classes=10)       # pooled (B, D)    -> logits (B, 10)
    get_probe_kind("linear_frames").input(frame_grid=2)           # "frames:2": what the features are pooled to

- `AttentiveProbe`: learnable query token(s) cross-attend to the tokens (one pre-norm cross-attention
  block with an MLP, V-JEPA's attentive pooler), then a linear classifier on the query outputs
  (concatenated when there are several). `self_attn_blocks=N` puts N standard transformer blocks on the
  tokens before the cross-attention (V-JEPA 2's probe has 3; kind `attentive3` is `attentive` with 3).
  `out_proj=False` leaves out the cross-attention's output projection and `norm_eps` sets the LayerNorm
  epsilon: the layout of V-JEPA 2's released probes (official: eps 1e-5; Hugging Face: 1e-6), which
  `videojepa.interop` loads exactly. `probe.arch` holds the constructor arguments (saved with a probe).
- `LinearProbe`: a linear classifier on pooled features: the tokens' mean (kind `linear`), or each time
  step's tokens averaged over a coarse spatial grid and concatenated in time order (kind `linear_frames`).
- `KNNClassifier`: cosine k-nearest neighbours on the same pooled features (kinds `knn`, `knn_frames`), votes
  weighted by exp(similarity / temperature) (the DINO recipe); returns per-class vote shares as scores.

What each kind can see: a mean keeps neither the order of frames nor (with RoPE, whose token values carry no
absolute position) where things are, so `linear` and `knn` are blind to the direction of a motion; the
`_frames` kinds keep when (and, with a grid, roughly where), but only what the encoder put into the token
values: they are read by a linear map or a similarity. The attentive probe learns where to look among all
tokens and can compute motion itself from well-preserved inputs, even from a random-init encoder's.

A probe's `pooled` attribute says which input it takes: tokens (False) or pooled features (True).
The trainable ones are `Probe`s: a parameter-free `prepare` (the same for every probe of one kind and
shape, so a probe grid computes it once) followed by `classify`; `probe(x)` is the two in a row.

A kind is added with one class and one decorator, from anywhere (`videojepa probe --help` lists them):

    @register_probe("max_linear", pools="none", trains=True)   # what it reads; trained as a lr x wd grid
    class MaxLinear(Probe):
        pooled = False
        def __init__(self, dim, num_classes): ...              # or from_config(dim, num_classes, settings)
        def classify(self, tokens): ...

`pools` is what its features are pooled to before it sees them (`videojepa.eval.features.pool_features`):
"none" (the tokens), "mean", or "frames" (each time step's tokens on a probe.frame_grid grid). A kind that
`trains` is built by `cls.from_config(dim, num_classes, settings)` (settings: the config's `probe` section,
`heads` resolved by `probe_heads`: the encoder's head count unless probe.heads is set) and trained as a grid
of lr x wd; one that does not is fit from the training features in one pass by `cls.from_features(features,
labels, num_classes, settings)` and scores clips by calling it (kNN).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from videojepa.errors import UserError
from videojepa.models.blocks import LN_EPS, Block, Mlp, init_weights


def attend_shared(keys: list[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Softmax attention pooling of tokens x (B, N, D) by several sets of batch-shared query keys (each
    (R_i, D), already in token space): one (B*N, D) x (D, sum R_i) product scores the tokens for all of them,
    and one batched product pools, so the tokens are read twice however many sets there are (a probe grid's
    cells). Returns each set's pooled tokens (B, R_i, D)."""
    B, N, D = x.shape
    sizes = [k.shape[0] for k in keys]
    stacked = torch.cat(keys) if len(keys) > 1 else keys[0]
    attn = (x.reshape(B * N, D) @ stacked.T).view(B, N, -1).transpose(1, 2)  # (B, sum R_i, N)
    # the softmax runs over tokens, row by row, so stacking the sets changes nothing in it
    return list(torch.bmm(attn.softmax(-1), x).split(sizes, dim=1))


class CrossAttention(nn.Module):
    """Queries (B, Q, D) attend to tokens (B, N, D).

    The parameters are those of standard multi-head cross-attention (q, kv and proj linears), but the keys
    and values are never materialised: with few queries it is far cheaper to fold each head's query into
    the key weights, score the tokens directly, pool the tokens and only then apply the value weights:
        q_h . (W_k,h x + b_k,h)        = (W_k,h^T q_h) . x + const   (the constant cancels in the softmax)
        sum_n a_n (W_v,h x_n + b_v,h)  = W_v,h (sum_n a_n x_n) + b_v,h   (attention weights sum to 1)
    That is O(N D H Q) instead of O(N D^2) per clip: ~15x fewer FLOPs for one query over 512 tokens of
    width 192, which is most of a probe's training step (tests check it equals the standard form).
    """

    def __init__(self, dim: int, num_heads: int, out_proj: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim) if out_proj else nn.Identity()  # V-JEPA 2's pooler has none

    def forward(
        self, q: torch.Tensor, x: torch.Tensor, scale: torch.Tensor | None = None, shift: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attend to the tokens `x * scale + shift` (a LayerNorm's affine part, folded in the same way:
        the shift is constant over tokens in the scores, and passes through the pooling unchanged).

        q may be (1, Q, D) for queries shared by the whole batch (a probe's learned queries): the scores
        are then one (B*N, D) x (D, Q*H) matrix product instead of B small ones; the result is (B, Q, D)."""
        keys = self.queries_in_token_space(q, scale)
        if keys.shape[0] == 1:
            pooled = attend_shared([keys[0]], x)[0]
        else:
            attn = torch.bmm(keys, x.transpose(1, 2))  # (B, Q*H, N)
            pooled = torch.bmm(attn.softmax(-1), x)
        return self.output(pooled, scale, shift)

    def queries_in_token_space(self, q: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """(B or 1, Q, D) queries -> (B or 1, Q*H, D): each head's scaled query folded into its key weights
        (and the LayerNorm scale), so that a token's score is a dot product with the token itself."""
        Bq, Q, D = q.shape
        H = self.num_heads
        q = self.q(q).view(Bq, Q, H, D // H)
        w_k = self.kv.weight.view(2, H, D // H, D)[0]  # kv outputs are ordered (k|v, head, channel)
        keys = torch.einsum("bqhc,hcd->bqhd", q * (D // H) ** -0.5, w_k)
        if scale is not None:
            keys = keys * scale
        return keys.reshape(Bq, Q * H, D)

    def output(
        self, pooled: torch.Tensor, scale: torch.Tensor | None = None, shift: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attention-pooled tokens (B, Q*H, D) -> the block's output (B, Q, D): the LayerNorm affine, then
        each head's value weights, then the output projection."""
        B, QH, D = pooled.shape
        H = self.num_heads
        if scale is not None:
            pooled = pooled * scale
        if shift is not None:
            pooled = pooled + shift
        w_v = self.kv.weight.view(2, H, D // H, D)[1]
        out = torch.einsum("bqhd,hcd->bqhc", pooled.view(B, QH // H, H, D), w_v) + self.kv.bias.view(2, H, D // H)[1]
        return self.proj(out.reshape(B, QH // H, D))


class CrossAttentionBlock(nn.Module):
    """q + xattn(q, LN(x)), then q + MLP(LN(q)) (V-JEPA's pooler block: the tokens are normed, not q)."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, norm_eps: float = LN_EPS, out_proj: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.xattn = CrossAttention(dim, num_heads, out_proj)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, q: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """q (B or 1, Q, D), tokens through `normalize` x_hat (B, N, D) -> (B, Q, D)."""
        # norm1's affine part is folded into the attention, so the full-size normalised tokens carry no
        # parameters: they are the same for every probe of a grid, and for every epoch over fixed features.
        return self.finish(q, self.xattn(q, x_hat, self.norm1.weight, self.norm1.bias), attended=True)

    def keys(self, q: torch.Tensor) -> torch.Tensor:
        """The queries as keys in the normalised tokens' space (`CrossAttention.queries_in_token_space`)."""
        return self.xattn.queries_in_token_space(q, self.norm1.weight)

    def finish(self, q: torch.Tensor, pooled: torch.Tensor, attended: bool = False) -> torch.Tensor:
        """The block's output from the queries and the attention-pooled normalised tokens (B, Q*H, D), or,
        when `attended`, from the cross-attention's output (B, Q, D)."""
        if not attended:
            pooled = self.xattn.output(pooled, self.norm1.weight, self.norm1.bias)
        q = q + pooled
        return q + self.mlp(self.norm2(q))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.norm1.eps)


# ------------------------------------------------------------------------------------------- the registry
POOLINGS = ("none", "mean", "frames")


@dataclass(frozen=True)
class ProbeKind:
    """A registered probe kind: its class, what it pools, whether it trains, the options it is built with."""

    name: str
    cls: type
    pools: str
    trains: bool
    options: dict = field(default_factory=dict)

    def input(self, frame_grid: int = 1) -> str:
        """The pooling (`videojepa.eval.features.pool_features`) of the features this kind reads."""
        return f"frames:{frame_grid}" if self.pools == "frames" else self.pools

    def build(self, dim: int, num_classes: int, settings) -> Probe:
        """A trainable probe (kinds that train) for features of width `dim`."""
        return self.cls.from_config(dim, num_classes, settings, **self.options)

    def fit(self, features: torch.Tensor, labels: torch.Tensor, num_classes: int, settings):
        """A scorer fit from the training features in one pass (kinds that do not train)."""
        return self.cls.from_features(features, labels, num_classes, settings, **self.options)


_KINDS: dict[str, ProbeKind] = {}


def register_probe(name: str, *, pools: str, trains: bool = True, **options):
    """Class decorator: make `cls` the probe kind `name` (`probe.kind=name`); see the module docstring.
    `options` go to the class's builder (e.g. attentive3: three self-attention blocks)."""

    def add(cls: type) -> type:
        if pools not in POOLINGS:
            raise TypeError(f"probe kind {name!r}: pools must be one of {POOLINGS}, got {pools!r}")
        builder = "from_config" if trains else "from_features"
        if not callable(getattr(cls, builder, None)):
            raise TypeError(f"probe kind {name!r} ({cls.__qualname__}) needs a classmethod `{builder}`")
        if getattr(cls, "pooled", pools != "none") != (pools != "none"):
            raise TypeError(f"probe kind {name!r}: {cls.__qualname__}.pooled disagrees with pools={pools!r}")
        if name in _KINDS and _KINDS[name].cls is not cls:
            raise TypeError(f"probe kind {name!r} is already registered by {_KINDS[name].cls.__qualname__}")
        _KINDS[name] = ProbeKind(name, cls, pools, trains, dict(options))
        return cls

    return add


def unregister_probe(name: str) -> None:
    _KINDS.pop(name, None)


def list_probe_kinds() -> list[str]:
    return list(_KINDS)


def get_probe_kind(name: str) -> ProbeKind:
    if name not in _KINDS:
        raise UserError(f"probe.kind: unknown probe kind {name!r}; allowed values: {', '.join(_KINDS)}")
    return _KINDS[name]


def describe_probe_kinds() -> str:
    """One line per kind, for `videojepa probe --help`."""
    reads = {"none": "tokens", "mean": "mean-pooled tokens", "frames": "per-frame pooled tokens"}
    return "; ".join(
        f"{k.name} ({reads[k.pools]}, {'trained' if k.trains else 'fit in one pass'})" for k in _KINDS.values()
    )


class Probe(nn.Module, metaclass=ABCMeta):
    """A trainable probe: features -> `prepare` (parameter-free) -> `classify` (the parameters) -> logits."""

    pooled: bool  # takes mean-pooled features (B, D), not tokens (B, N, D)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The parameter-free start of the forward pass; nothing by default."""
        return x

    @abstractmethod
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from prepared features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.prepare(x))

    @classmethod
    def from_config(cls, dim: int, num_classes: int, settings, **options) -> Probe:
        """The probe for features of width `dim`; `settings` is the config's `probe` section."""
        return cls(dim, num_classes, **options)

    @staticmethod
    def classify_many(probes: Sequence[Probe], x: torch.Tensor) -> list[torch.Tensor]:
        """Each probe's logits for the same prepared features (a probe grid's cells); probes that can share
        work between them override it."""
        return [p.classify(x) for p in probes]


# (decorators run bottom-up: attentive is registered, and listed, before attentive3, which is attentive with
# 3 self-attention blocks, kept as a name: probe.blocks=3 is the same probe)
@register_probe("attentive3", pools="none", self_attn_blocks=3)
@register_probe("attentive", pools="none")
class AttentiveProbe(Probe):
    pooled = False

    def __init__(
        self,
        dim: int,
        num_classes: int,
        num_heads: int = 12,
        num_queries: int = 1,
        self_attn_blocks: int = 0,
        mlp_ratio: float = 4.0,
        norm_eps: float = LN_EPS,
        out_proj: bool = True,
    ):
        super().__init__()
        self.arch = dict(
            dim=dim,
            num_classes=num_classes,
            num_heads=num_heads,
            num_queries=num_queries,
            self_attn_blocks=self_attn_blocks,
            mlp_ratio=mlp_ratio,
            norm_eps=norm_eps,
            out_proj=out_proj,
        )
        if dim % num_heads:
            divisors = [h for h in range(1, min(dim, 16) + 1) if dim % h == 0]
            raise UserError(
                f"probe.heads={num_heads} does not divide the feature width {dim}; "
                f"allowed: {', '.join(map(str, divisors))}"
            )
        hidden = int(dim * mlp_ratio)
        self.blocks = nn.ModuleList(Block(dim, num_heads, hidden, norm_eps=norm_eps) for _ in range(self_attn_blocks))
        self.query = nn.Parameter(torch.zeros(1, num_queries, dim))
        self.pool = CrossAttentionBlock(dim, num_heads, hidden, norm_eps, out_proj)
        self.head = nn.Linear(num_queries * dim, num_classes)
        nn.init.trunc_normal_(self.query, std=0.02)
        self.apply(init_weights)

    @classmethod
    def from_config(cls, dim: int, num_classes: int, settings, self_attn_blocks: int | None = None) -> AttentiveProbe:
        """settings.heads (resolved: `probe_heads`), .queries, .out_proj and .blocks (probe.blocks), unless the kind
        fixes the blocks (`attentive3`: 3)."""
        blocks = settings.blocks if self_attn_blocks is None else self_attn_blocks
        out_proj = getattr(settings, "out_proj", True)
        return cls(dim, num_classes, settings.heads, settings.queries, self_attn_blocks=blocks, out_proj=out_proj)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The parameter-free start of the forward pass: the layer-normed tokens when the cross-attention
        reads them directly (no self-attention blocks), else the tokens. The same for every probe of this
        shape, so a grid computes it once per batch, and a run on fixed features once per feature set."""
        return x if len(self.blocks) else self.pool.normalize(x)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """`prepare`d tokens (B, N, D) -> logits."""
        if len(self.blocks):
            for block in self.blocks:
                x = block(x)
            x = self.pool.normalize(x)
        q = self.pool(self.query, x)  # one set of queries for the whole batch
        return self.head(q.flatten(1))

    @staticmethod
    def classify_many(probes: Sequence[AttentiveProbe], x: torch.Tensor) -> list[torch.Tensor]:
        """Each probe's logits for the same prepared tokens (a probe grid's cells). Without self-attention
        blocks the probes' queries score and pool the tokens together (`attend_shared`): one pass over
        the tokens for all of them instead of one per probe; the rest is per probe and small."""
        if any(len(p.blocks) for p in probes):
            return [p.classify(x) for p in probes]
        pooled = attend_shared([p.pool.keys(p.query)[0] for p in probes], x)
        return [p.head(p.pool.finish(p.query, z).flatten(1)) for p, z in zip(probes, pooled)]


# (decorators run bottom-up: linear is registered, and listed, before linear_frames)
@register_probe("linear_frames", pools="frames")
@register_probe("linear", pools="mean")
class LinearProbe(Probe):
    pooled = True

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.head = nn.Linear(dim, num_classes)
        self.apply(init_weights)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


# (decorators run bottom-up: knn is registered, and listed, before knn_frames)
@register_probe("knn_frames", pools="frames", trains=False)
@register_probe("knn", pools="mean", trains=False)
class KNNClassifier:
    """Cosine kNN over stored training features; `scores(x)` gives (B, num_classes) vote shares."""

    pooled = True

    def __init__(
        self, features: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int = 20, temperature: float = 0.07
    ):
        self.bank = F.normalize(features.float(), dim=-1)
        self.labels, self.num_classes = labels.long(), num_classes
        self.k, self.temperature = min(k, len(labels)), temperature

    @classmethod
    def from_features(cls, features, labels, num_classes: int, settings) -> KNNClassifier:
        return cls(features, labels, num_classes, settings.knn_k, settings.knn_temperature)

    def setting(self) -> dict:
        """What the result's cell records of it."""
        return {"k": self.k, "temperature": self.temperature}

    @torch.no_grad()
    def scores(self, x: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        out = []
        for part in F.normalize(x.float(), dim=-1).split(chunk):
            sim, idx = (part @ self.bank.T).topk(self.k, dim=1)
            votes = torch.zeros(len(part), self.num_classes)
            votes.scatter_add_(1, self.labels[idx], (sim / self.temperature).exp())
            out.append(votes / votes.sum(1, keepdim=True))
        return torch.cat(out)

    __call__ = scores


def probe_heads(settings, encoder) -> int:
    """probe.heads, or by default the encoder's head count (its card's; the official V-JEPA code's choice), which
    divides its width and so every concatenation of its layers."""
    return settings.heads or encoder.num_heads


def build_probe(
    kind: str, dim: int, num_classes: int, num_heads: int = 12, num_queries: int = 1, blocks: int = 0
) -> Probe:
    """A trainable probe by kind name, with the attentive probes' heads, queries and self-attention blocks
    (`attentive3` means 3); kNN is fit from its training features: `get_probe_kind(kind).fit`."""
    probe_kind = get_probe_kind(kind)
    if not probe_kind.trains:
        raise ValueError(f"probe kind {kind!r} is not trained: it is fit from the training features")
    return probe_kind.build(dim, num_classes, SimpleNamespace(heads=num_heads, queries=num_queries, blocks=blocks))
