"""The extension points, used from outside the package as a plugin would: one class and one decorator each.

A probe kind (`register_probe`), a checkpoint source (`register_source`) and an evaluation protocol
(`register_evaluation`) defined here are picked by name in a config or on the command line, listed by `--help`,
and run end to end; an unknown name is a one-line error that lists them.
"""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from videojepa.encoder_io import ClipProtocol, EncoderCard, load_encoder
from videojepa.eval.probes import Probe, register_probe, unregister_probe
from videojepa.eval.tasks import Evaluation, TaskResult, register_evaluation, unregister_evaluation
from videojepa.interop.registry import CheckpointSource, register_source, unregister_source
from videojepa.models.registry import create_model, encoder_from_arch

pytestmark = pytest.mark.usefixtures("one_thread")

# 4-frame 32x32 clips, patch 8: 2 x 4 x 4 = 32 tokens of width 96 (vit_nano)
TINY = [
    "model.name=vit_nano",
    "model.patch_size=8",
    "data.crop_size=32",
    "data.frames_per_clip=4",
    "data.frame_step=4",
    "data.num_workers=0",
    "features.batch_size=16",
    "optim.epochs=2",
]


def tasks(synth) -> str:
    return f"tasks=[{{name: motion, train: {synth}/motion/train.csv, val: {synth}/motion/val.csv}}]"


def help_text(cli, command, capsys) -> str:
    with pytest.raises(SystemExit):
        cli(command, "--help")
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


# ------------------------------------------------------------------------------------------------- probe kind
class MaxLinear(Probe):
    """Max over the tokens, then a linear classifier: reads the tokens, trained as a grid."""

    pooled = False

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.head = nn.Linear(dim, num_classes)

    def classify(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(tokens.amax(dim=1))


@pytest.fixture
def max_linear():
    register_probe("max_linear", pools="none", trains=True)(MaxLinear)
    yield MaxLinear
    unregister_probe("max_linear")


def test_a_probe_kind_from_outside_is_listed_configured_and_trained(max_linear, tiny_synth, tmp_path, cli, capsys):
    assert "max_linear (tokens, trained)" in help_text(cli, "probe", capsys)
    code, _, err = cli("probe", "demo/probe", f"run.dir={tmp_path}", tasks(tiny_synth), *TINY, "probe.kind=max_linar")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "probe.kind: got 'max_linar'; allowed values: 'attentive'," in err and "'max_linear'" in err
    code, _, err = cli("probe", "demo/probe", f"run.dir={tmp_path}", tasks(tiny_synth), *TINY, "probe.kind=max_linear")
    assert code == 0, err
    results = json.loads((tmp_path / "results.json").read_text())
    task = results["tasks"][0]
    assert results["probe"]["kind"] == "max_linear" and results["optim"]["epochs"] == 2
    assert task["evaluation"] == "classification" and 0.0 <= task["top1"] <= 1.0
    assert {"lr", "weight_decay", "train_loss"} <= set(task["cells"][0])  # trained as a grid


def test_a_probe_kind_must_declare_what_it_reads_and_how_it_is_built():
    with pytest.raises(TypeError, match="pools must be one of"):
        register_probe("bad_pool", pools="max")(MaxLinear)
    with pytest.raises(TypeError, match="disagrees with pools='mean'"):
        register_probe("bad_input", pools="mean")(MaxLinear)  # it reads tokens
    with pytest.raises(TypeError, match="needs a classmethod `from_features`"):
        register_probe("bad_fit", pools="none", trains=False)(MaxLinear)


# ------------------------------------------------------------------------------------------ checkpoint source
class NumpyEncoder(CheckpointSource):
    """An .npz of an encoder's tensors with its architecture as JSON (a made-up outside format)."""

    name = "npz"
    description = "an .npz of encoder tensors with an 'arch' JSON entry"

    def read(self, path, **options):
        data = np.load(path)
        arch = json.loads(str(data["arch"]))
        encoder = encoder_from_arch(arch)
        state = {k: torch.from_numpy(data[k]) for k in data.files if k != "arch"}
        encoder.load_state_dict(state, strict=True)
        card = EncoderCard.describe(encoder, clip=ClipProtocol(frames=4, crop=32), source={"format": "npz"})
        return encoder, None, card


@pytest.fixture
def npz_source():
    register_source(NumpyEncoder)
    yield NumpyEncoder
    unregister_source(NumpyEncoder.name)


def test_a_checkpoint_source_from_outside_converts_and_is_listed(npz_source, tmp_path, cli, capsys):
    assert "npz: an .npz of encoder tensors" in help_text(cli, "convert", capsys)
    torch.manual_seed(0)
    encoder = create_model("vit_pico", patch_size=8)
    tensors = {k: v.numpy() for k, v in encoder.state_dict().items()}
    np.savez(tmp_path / "enc.npz", arch=json.dumps(encoder.arch), **tensors)
    code, out, err = cli("convert", "--from", "npz", tmp_path / "enc.npz", tmp_path / "ours")
    assert code == 0, err
    loaded = load_encoder(tmp_path / "ours")
    assert loaded.card.clip.frames == 4 and loaded.card.source == {"format": "npz"}
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in encoder.state_dict().items())
    # the official format's flags are refused for it, naming the format they belong to
    code, _, err = cli("convert", "--from", "npz", tmp_path / "enc.npz", tmp_path / "two", "--arch", "vit_pico")
    assert code == 2 and "--arch only apply to --from official" in err
    with pytest.raises(SystemExit):  # argparse's own refusal of a choice, listing the registered formats
        cli("convert", "--from", "npzz", tmp_path / "enc.npz", tmp_path / "three")
    listed = "invalid choice: 'npzz' (choose from 'hf', 'npz', 'official', 'official-probe', 'videomae')"
    assert listed in capsys.readouterr().err


def test_a_checkpoint_source_must_subclass_name_itself_and_read():
    class Nameless(CheckpointSource):
        pass

    class Unreadable(CheckpointSource):
        name = "unreadable"

    with pytest.raises(TypeError, match="non-empty class attribute `name`"):
        register_source(Nameless)
    with pytest.raises(TypeError, match="Unreadable: a checkpoint source defines read"):
        register_source(Unreadable)
    with pytest.raises(TypeError, match="subclasses CheckpointSource"):
        register_source(MaxLinear)


# -------------------------------------------------------------------------------------- evaluation protocol
class RetrievalResult(TaskResult):
    recall_at_1: float  # share of validation videos whose nearest training video has their label


class Retrieval(Evaluation):
    """Nearest-neighbour retrieval on mean-pooled features: the seam a localisation protocol uses too."""

    name = "retrieval"
    result = RetrievalResult

    def __init__(self, context, task, data):
        from videojepa.data.build import build_dataset

        super().__init__(context, task, data)
        self.train_ds = build_dataset(task.train, data, train=False)
        self.val_ds = build_dataset(task.val, data, train=False)

    def features(self, dataset):
        found = self.context.source.extract(self.encoder, dataset, 8, pooling="mean")
        return F.normalize(found.features[0].float().mean(1), dim=-1), torch.tensor([e.label for e in dataset.entries])

    def run(self):
        (train, train_labels), (val, val_labels) = self.features(self.train_ds), self.features(self.val_ds)
        nearest = (val @ train.T).argmax(1)
        recall = float((train_labels[nearest] == val_labels).float().mean())
        d = self.data
        return RetrievalResult(
            name=self.task.name,
            evaluation=self.name,
            train=str(self.task.train),
            val=str(self.task.val),
            num_train=len(self.train_ds),
            num_val=len(self.val_ds),
            protocol={"frames_per_clip": d.frames_per_clip, "crop_size": d.crop_size},
            seconds={},
            recall_at_1=recall,
        )

    @classmethod
    def markdown(cls, results, tasks):
        return [f"{t['name']}: recall@1 {100 * t['recall_at_1']:.1f}%" for t in tasks]


@pytest.fixture
def retrieval():
    register_evaluation(Retrieval)
    yield Retrieval
    unregister_evaluation(Retrieval.name)


def test_an_evaluation_protocol_from_outside_scores_its_tasks_beside_classification(
    retrieval, tiny_synth, tmp_path, cli, capsys
):
    assert "(tasks.N.evaluation): classification, retrieval" in help_text(cli, "probe", capsys)
    both = (
        f"tasks=[{{name: motion, train: {tiny_synth}/motion/train.csv, val: {tiny_synth}/motion/val.csv}}, "
        f"{{name: nearest, train: {tiny_synth}/appearance/train.csv, val: {tiny_synth}/appearance/val.csv, "
        f"evaluation: retrieval}}]"
    )
    code, out, err = cli("probe", "demo/probe", f"run.dir={tmp_path}", both, *TINY, "probe.kind=linear")
    assert code == 0, err
    results = json.loads((tmp_path / "results.json").read_text())
    motion, nearest = results["tasks"]
    assert motion["evaluation"] == "classification" and "top1" in motion
    assert nearest["evaluation"] == "retrieval" and 0.0 <= nearest["recall_at_1"] <= 1.0 and "top1" not in nearest
    assert "nearest: recall@1" in (tmp_path / "results.md").read_text() and "| motion |" in out
    code, _, err = cli("probe", "demo/probe", f"run.dir={tmp_path}", both.replace("retrieval", "retrieve"), *TINY)
    assert code == 2 and "tasks.1.evaluation: unknown evaluation 'retrieve'; allowed values: classification" in err
