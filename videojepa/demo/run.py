"""The steps of `videojepa demo` (`run_demo`) and the numbers that size it (`SIZES`).

    from videojepa.demo import SIZES, DemoSettings, run_demo
    results = run_demo(DemoSettings(out="runs/demo", size=SIZES["quick"]))

Steps, each skipped when its output is already there, so a killed demo continues where it stopped:
  1. data    OUT/data: the synthetic motion + appearance sets (`videojepa.data.synth.write_dataset`),
             rendered again only when OUT/data/synth.json does not match the requested ones.
  2. budget  ONE training budget, in FLOPs: `budget_steps` V-JEPA steps at V-JEPA's FLOPs per step (the
             sampler's real masking ratio). SALT's teacher gets `teacher_share` of it and the student what
             the teacher left (`videojepa.planner.split_budget`); VideoMAE, whose steps are cheaper, gets as many
             steps as fit (`steps_within_budget`). Steps round down: no method spends more than the budget.
  3. train   OUT/runs/{salt_teacher,salt_student,vjepa,videomae}: ordinary pretraining run directories made
             from the demo/<method> presets, each keeping its encoder at `curve_fractions` of its steps
             (`train.encoder_snapshots`). The Trainer resumes a run directory by itself and returns at once
             from a finished one.
  4. probe   OUT/probes/<encoder>/<protocol>: every protocol of `PROTOCOLS` on both tasks for each final
             encoder and for a random-init encoder of the same architecture (the attentive probe caches the
             tokens, the cheap probes pool them); the `CURVE_PROTOCOLS` for each snapshot
             (OUT/probes/<run>_step<N>): the points of the accuracy-vs-FLOPs curves.
  5. report  OUT/results.md and OUT/results.json (`videojepa.demo.report`), OUT/*.png (`videojepa.demo.plots`).

The functions are public so that other experiments (experiments/salt_allocation.py) reuse the same
configs, budget arithmetic, training and probing.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from videojepa.config.loader import load_config, to_dict
from videojepa.config.schema import ModelConfig, PretrainConfig
from videojepa.data.build import build_dataset
from videojepa.data.synth import APPEARANCES, DEFAULT_MOTIONS, SynthSpec, write_dataset
from videojepa.demo.plots import plot_accuracy_vs_flops, plot_loss_curves
from videojepa.demo.report import build_results, penalty_label, write_results
from videojepa.encoder_io import resolve_encoder_path
from videojepa.errors import UserError
from videojepa.eval.config import ProbeConfig
from videojepa.eval.features import FeatureSource
from videojepa.eval.runner import resolve_probe_precision, run_probe
from videojepa.masks import build_mask_generators
from videojepa.masks.build import describe
from videojepa.masks.plot import draw_masks, sample_masks
from videojepa.methods import check_config
from videojepa.methods.accounting import stage_flops, steps_within_budget
from videojepa.planner import split_budget
from videojepa.train.checkpoint import PATTERN, list_checkpoints
from videojepa.train.logger import read_metrics
from videojepa.train.run_dir import snapshot_path
from videojepa.train.trainer import Trainer
from videojepa.utils.files import atomic_write_text
from videojepa.utils.plotting import pyplot

Log = Callable[[str], None]

# Pretraining runs in training order (the student needs its teacher first).
METHODS = ("salt_teacher", "salt_student", "vjepa", "videomae")
METHOD_LABELS = {"salt_teacher": "SALT", "salt_student": "SALT", "vjepa": "V-JEPA", "videomae": "VideoMAE"}
TASKS = ("motion", "appearance")
RANDOM_INIT = "random_init"
# The probe protocols of the table, and those of the curves' intermediate points (cheap: a linear map or a
# vote on pooled features that keep time; see README "Probes"). The attentive probe is the papers' protocol.
PROTOCOLS = ("attentive", "linear_frames", "knn_frames")
CURVE_PROTOCOLS = ("linear_frames", "knn_frames")
WALL_TIME_FILE = "wall_time.json"  # in each run directory: training seconds summed over demo sessions


@dataclass(frozen=True)
class DemoSize:
    """How much work the demo does."""

    num_videos: int  # synthetic videos (a quarter of them for validation), labelled by motion and by appearance
    budget_steps: int  # the training budget, in V-JEPA steps; every other method gets the same FLOPs
    teacher_share: float  # fraction of the budget spent on SALT's teacher; the student gets the rest
    probe_epochs: int  # attentive-probe training epochs per task
    frames: int = 16  # frames per synthetic video (the demo presets' clip length)
    size: int = 64  # frame side in pixels (the demo presets' crop)
    curve_fractions: tuple[float, ...] = (0.5,)  # fractions of each run's steps probed for the curves
    curve_videos: tuple[int, int] = (400, 200)  # the curves' probes use the first N training / validation videos
    attentive_tasks: tuple[str, ...] = ("motion",)  # the attentive probe (the costly one) runs on these tasks

    def snapshot_steps(self, steps: int) -> list[int]:
        """The steps of a `steps`-step run at which its encoder is kept and probed (the last one is probed
        anyway): `curve_fractions` of it, rounded, distinct, between 1 and steps - 1."""
        return sorted({min(max(1, round(f * steps)), steps) for f in self.curve_fractions} - {steps})


# Every number that sizes the demo, in one place; they go with the demo presets (videojepa/presets/demo/*.yaml)
# and the synthetic task (videojepa/data/synth.py). Sized for the 2-core CPU of SPEC section 8: full <= 15
# minutes (measured 12 min 4 s from a fresh clone, plus 42 s creating the venv; see BENCHMARKS.md), quick <= 3.
# Measured there (bf16, vit_micro, batch 8): pretraining ~4.9 min for the four runs of a 120-step budget;
# probes ~6.8 min: each final encoder ~32 s of bf16 features for the 1600 clips (the videos decoded once for
# all encoders) and ~27 s of attentive-probe training on motion; the cheap probes pool its cached tokens; each
# halfway encoder ~13 s of features for its 600 curve clips.
# The probes need the videos: with 450 training clips even the random-init encoder sat at chance on motion
# (27 +- 6% over 3 seeds, chance 25%); with 1200 it reaches ~50-57%, far from both chance and saturation.
# They also need the epochs: at 10 the attentive probe had not left its initial plateau for the trained
# encoders (EXPERIMENTS.md, probe protocol); at 30 its training loss ends near 0.
SIZES = {
    "full": DemoSize(num_videos=1600, budget_steps=120, teacher_share=0.2, probe_epochs=30),
    "quick": DemoSize(num_videos=160, budget_steps=30, teacher_share=0.2, probe_epochs=15),
}


@dataclass(frozen=True)
class DemoSettings:
    out: str = "runs/demo"
    size: DemoSize = SIZES["full"]
    seed: int = 0  # data, weights, masks and probes
    # key=value overrides for every pretraining / probe config, applied after the preset; the demo's own
    # keys (run.dir, run.seed, data lists, train.steps, the teacher, the probe's tasks) are applied after them.
    pretrain_overrides: tuple[str, ...] = ()
    probe_overrides: tuple[str, ...] = ()
    workers: int | None = None  # processes that render the synthetic videos (default: all CPUs)

    def record(self) -> dict:
        """Everything that changes the demo's results (not where or how fast it runs)."""
        record = {
            **dataclasses.asdict(self.size),
            "seed": self.seed,
            "pretrain_overrides": list(self.pretrain_overrides),
            "probe_overrides": list(self.probe_overrides),
        }
        return json.loads(json.dumps(record))  # tuples as lists, as in settings.json


# ----------------------------------------------------------------------------- data


def prepare_data(data_dir: str | Path, size: DemoSize, seed: int, workers: int | None = None, log: Log = print) -> dict:
    """Render the synthetic datasets into `data_dir` unless its synth.json already describes them; returns
    synth.json."""
    spec = dataclasses.replace(SynthSpec(), frames=size.frames, size=size.size)
    wanted = {
        "num_videos": size.num_videos,
        "seed": seed,
        "motion_classes": list(DEFAULT_MOTIONS),
        "appearance_classes": list(APPEARANCES),
        "spec": json.loads(json.dumps(dataclasses.asdict(spec))),
    }  # tuples as lists, as in the file
    summary_path = Path(data_dir) / "synth.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if all(summary.get(k) == v for k, v in wanted.items()):
            log(f"data: {data_dir} already holds the {size.num_videos} synthetic videos")
            return summary
    log(f"data: rendering {size.num_videos} synthetic videos ({size.frames}x{size.size}x{size.size}) into {data_dir}")
    # force: a folder with other or half-written videos (no matching synth.json) is replaced
    summary = write_dataset(
        str(data_dir),
        num_videos=size.num_videos,
        frames=size.frames,
        size=size.size,
        seed=seed,
        workers=workers,
        force=True,
    )
    return {k: v for k, v in summary.items() if k not in ("seconds", "workers")}


# ----------------------------------------------------------------------------- configs and budget


def pretrain_config(
    method: str,
    run_dir: str | Path,
    data_dir: str | Path,
    seed: int,
    teacher: PretrainConfig | None = None,
    overrides: Iterable[str] = (),
) -> PretrainConfig:
    """The demo/<method> preset pretraining on `data_dir`'s motion videos (labels unused) into `run_dir`.

    `teacher` (salt_student only) is the teacher's config: the student reads the teacher's run directory,
    and its architecture is named so that FLOPs can be counted before the teacher exists.
    Set the number of steps with `with_steps`.
    """
    motion = Path(data_dir) / "motion"
    own = {
        "run.dir": str(run_dir),
        "run.seed": seed,
        "data.train": str(motion / "train.csv"),
        "data.val": str(motion / "val.csv"),
    }
    if method == "salt_student":
        if teacher is None:
            raise ValueError("salt_student needs its teacher's config")
        own.update({"method.teacher.checkpoint": teacher.run.dir, "method.teacher.model": teacher.model.name})
    return load_config(f"demo/{method}", [*overrides, *own.items()])


def with_steps(cfg: PretrainConfig, steps: int) -> PretrainConfig:
    """`cfg` trained for `steps` steps, its warmup scaled to keep the config's warmup/steps ratio."""
    train = cfg.train
    warmup = min(steps, round(train.warmup_steps * steps / train.steps))
    return cfg.model_copy(update={"train": train.model_copy(update={"steps": steps, "warmup_steps": warmup})})


def plan_budget(configs: dict[str, PretrainConfig], budget_steps: int, teacher_share: float) -> dict:
    """One FLOPs budget for every method in `configs` (needs vjepa, salt_teacher and salt_student).

    Returns {"flops", "budget_steps", "vjepa_flops_per_step", "teacher_share", "mask_ratio": "measured",
    "runs": {name: {"name", "method", "budget", "steps", "flops_per_step", "flops", ...}}}; see the module
    docstring for the rule.
    """
    if budget_steps < 1:
        raise UserError(f"--budget-steps must be at least 1, got {budget_steps}")
    per_step = stage_flops(configs["vjepa"], measured_masks=True)["flops_per_step"]
    budget = budget_steps * per_step
    salt = split_budget(configs["salt_teacher"], configs["salt_student"], budget, teacher_share, measured_masks=True)
    runs = {name: {**row, "name": name} for name, row in zip(("salt_teacher", "salt_student"), salt["stages"])}
    for name in ("vjepa", "videomae"):
        if name in configs:
            runs[name] = steps_within_budget(configs[name], budget, name, measured_masks=True)
    return {
        "flops": budget,
        "budget_steps": budget_steps,
        "vjepa_flops_per_step": per_step,
        "teacher_share": teacher_share,
        "mask_ratio": "measured",
        "runs": runs,
    }


def demo_configs(settings: DemoSettings) -> dict[str, PretrainConfig]:
    """The four pretraining configs of the demo, before their steps are set from the budget."""
    out = Path(settings.out)
    configs: dict[str, PretrainConfig] = {}
    for method in METHODS:
        configs[method] = pretrain_config(
            method,
            out / "runs" / method,
            out / "data",
            settings.seed,
            teacher=configs.get("salt_teacher"),
            overrides=settings.pretrain_overrides,
        )
        check_config(configs[method])  # the method's rules across sections: before anything is written
    return configs


# ----------------------------------------------------------------------------- training


def completed_steps(run_dir: str | Path) -> int:
    """Steps of the newest checkpoint in `run_dir` (0 when there is none)."""
    found = list_checkpoints(Path(run_dir))
    return int(PATTERN.search(found[-1].name).group(1)) if found else 0


def train(cfg: PretrainConfig, log: Log = print) -> dict:
    """Train or resume `cfg`'s run directory; a finished run is left as it is.

    Returns {"dir", "steps", "wall_s", "trained_now"}: wall_s is the training time summed over every
    session that trained this run (kept in run_dir/wall_time.json, so a resumed run counts its whole cost).
    """
    run_dir = Path(cfg.run.dir)
    timing = run_dir / WALL_TIME_FILE
    seconds = json.loads(timing.read_text())["seconds"] if timing.exists() else 0.0
    done = completed_steps(run_dir)
    trained_now = done < cfg.train.steps
    if trained_now:
        log(
            f"train {cfg.method.name}: {cfg.train.steps} steps into {run_dir}"
            + (f" (resuming at {done})" if done else "")
        )
    else:
        log(f"train {cfg.method.name}: {run_dir} is already trained ({done} steps)")
    start = time.perf_counter()
    try:
        Trainer(cfg).fit()  # also refuses a run directory made with another config
    finally:  # a killed session still counts what it trained
        if trained_now:
            seconds += time.perf_counter() - start
            atomic_write_text(timing, json.dumps({"seconds": seconds}) + "\n")
    return {"dir": str(run_dir), "steps": cfg.train.steps, "wall_s": seconds, "trained_now": trained_now}


def last_health(run_dir: str | Path) -> dict:
    """The health monitors of a run's last full metrics record: RankMe, feature/target/prediction std."""
    full = read_metrics(run_dir, kind="log")
    last = full[-1] if full else {}
    return {
        k: last.get(k)
        for k in (
            "step",
            "loss",
            "feature_rank",
            "feature_std",
            "target_std",
            "context_std",
            "pred_std",
            "collapse_warning",
        )
    }


# ----------------------------------------------------------------------------- probing


def probe_config(
    checkpoint: str | Path,
    probe_dir: str | Path,
    data_dir: str | Path,
    epochs: int,
    seed: int,
    random_model: ModelConfig | None = None,
    overrides: Iterable[str] = (),
    kind: str | None = None,
    features_dir: str | Path | None = None,
    tasks: Iterable[str] = TASKS,
):
    """The demo/probe preset on the synthetic `tasks` (default both) for `checkpoint` (a run directory, an
    encoder file, or "none" with the architecture `random_model` for a random-init encoder); `kind` replaces
    the preset's probe.kind, `features_dir` its feature cache folder (probes of one encoder share it)."""
    own = {
        "run.dir": str(probe_dir),
        "run.seed": seed,
        "probe.checkpoint": str(checkpoint),
        "optim.epochs": epochs,
        "tasks": [
            {"name": t, "train": str(Path(data_dir) / t / "train.csv"), "val": str(Path(data_dir) / t / "val.csv")}
            for t in tasks
        ],
    }
    if kind is not None:
        own["probe.kind"] = kind
    if features_dir is not None:
        own["features.dir"] = str(features_dir)
    if random_model is not None:
        own.update({f"model.{k}": v for k, v in random_model.model_dump().items()})
    return load_config("demo/probe", [*overrides, *own.items()], schema=ProbeConfig)


def probe(cfg, log: Log = print, source=None) -> dict:
    """`run_probe(cfg, source=source)`, unless run.dir already holds results of this config, newer than the
    encoder. `source`: a `videojepa.eval.features.FeatureSource` shared by the probes of several encoders."""
    resolve_probe_precision(cfg)  # results record the resolved precision, not `auto`
    path = Path(cfg.run.dir) / "results.json"
    if path.exists():
        old = json.loads(path.read_text())
        checkpoint = cfg.probe.checkpoint
        fresh = checkpoint == "none" or resolve_encoder_path(checkpoint).stat().st_mtime_ns <= path.stat().st_mtime_ns
        if fresh and old.get("config") == to_dict(cfg):
            log(f"probe {checkpoint}: results already in {path}")
            return old
    log(f"probe {cfg.probe.checkpoint} -> {cfg.run.dir}")
    return run_probe(cfg, log=log, source=source)


def top1(results: dict) -> dict:
    """{task name: validation top-1} of probe results."""
    return {t["name"]: t["top1"] for t in results["tasks"]}


# ----------------------------------------------------------------------------- the whole demo


def check_settings(out: Path, settings: DemoSettings) -> None:
    """Refuse to mix results of different settings in one folder; record the settings of a new one."""
    path, record = out / "settings.json", settings.record()
    if path.exists():
        saved = json.loads(path.read_text())
        changed = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in record.items() if saved.get(k) != v]
        if changed:
            raise UserError(
                f"{out} holds a demo made with other settings ({'; '.join(changed)}); "
                f"choose another --out, or delete {out} to start again"
            )
        return
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def run_demo(settings: DemoSettings, log: Log = print) -> dict:
    """The whole demo (module docstring); returns the results.json document."""
    pyplot()  # fail now if matplotlib is missing, not after the training
    out, size = Path(settings.out), settings.size
    # Configs and budget first: bad settings fail before anything is written.
    configs = demo_configs(settings)
    budget = plan_budget(configs, size.budget_steps, size.teacher_share)
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, settings)

    log("[1/5] synthetic data")
    start = time.perf_counter()
    data = prepare_data(out / "data", size, settings.seed, settings.workers, log)
    data["seconds"] = time.perf_counter() - start

    log(
        f"[2/5] FLOPs budget: {budget['flops']:.3g} = {size.budget_steps} V-JEPA steps; "
        f"teacher share {size.teacher_share:g}"
    )
    for name, row in budget["runs"].items():
        log(f"  {name:<13} {row['steps']:>6} steps x {row['flops_per_step']:.3g} = {row['flops']:.3g} FLOPs")
    configs = {name: with_steps(cfg, budget["runs"][name]["steps"]) for name, cfg in configs.items()}

    log("[3/5] pretraining")
    configs = {name: with_snapshots(cfg, size) for name, cfg in configs.items()}
    runs = {}
    start = time.perf_counter()
    for name in METHODS:
        runs[name] = {**budget["runs"][name], **train(configs[name], log)}
        runs[name]["health"] = last_health(runs[name]["dir"])
        runs[name]["snapshots"] = configs[name].train.encoder_snapshots
        runs[name]["feature_reg"] = getattr(configs[name].method, "feature_reg", 0.0)  # a method's own key
    timing = {"pretrain_s": time.perf_counter() - start}

    log("[4/5] probes")
    start = time.perf_counter()
    probes = probe_all(settings, configs, runs, log)
    timing["probe_s"] = time.perf_counter() - start
    chance = probes.pop("chance")

    log("[5/5] report and plots")
    results = build_results(settings, data, budget, runs, probes, chance, timing)
    results["plots"] = [str(p) for p in write_plots(out, results, configs)]
    write_results(out, results)
    return results


def with_snapshots(cfg: PretrainConfig, size: DemoSize) -> PretrainConfig:
    """`cfg` keeping its encoder at the size's curve points (`DemoSize.snapshot_steps`)."""
    train = cfg.train
    snapshots = [0, *size.snapshot_steps(train.steps)]  # step 0: the initial weights, how far training moved them
    return cfg.model_copy(update={"train": train.model_copy(update={"encoder_snapshots": snapshots})})


def encoders_to_probe(out: Path, runs: dict) -> list[dict]:
    """Every encoder the demo probes: {"name", "checkpoint", "run", "step", "final"}; random init first, then
    each run's snapshots and its final encoder, in training order."""
    found = [{"name": RANDOM_INIT, "checkpoint": "none", "run": None, "step": 0, "final": True}]
    for name in METHODS:
        for step in [s for s in runs[name]["snapshots"] if s > 0]:  # step 0 is random init: probed once, above
            path = snapshot_path(out / "runs" / name, step)
            found.append(
                {"name": f"{name}_step{step}", "checkpoint": str(path), "run": name, "step": step, "final": False}
            )
        found.append(
            {
                "name": name,
                "checkpoint": str(out / "runs" / name),
                "run": name,
                "step": runs[name]["steps"],
                "final": True,
            }
        )
    return found


def probe_all(settings: DemoSettings, configs: dict[str, PretrainConfig], runs: dict, log: Log = print) -> dict:
    """Probe every encoder of `encoders_to_probe`. Final encoders (and random init): every protocol of
    `PROTOCOLS` on the whole lists, for the table (the attentive probe first, on `DemoSize.attentive_tasks`:
    it caches the tokens that the cheap probes pool); then, like each snapshot, the `CURVE_PROTOCOLS` on the
    first `DemoSize.curve_videos` of each list, for the curves (cut from the cached tokens; a snapshot's
    are computed). Returns {encoder name: {"dir", "checkpoint", "run", "step", "final", "top1": {protocol:
    {task: fraction}}, "curve_top1": {...}, "confusion": {protocol: {task: {"classes", "matrix"}}},
    "seconds"}, ..., "chance": {task: fraction}}."""
    out, size = Path(settings.out), settings.size
    source = FeatureSource(keep_clips=True)  # every encoder is probed on the same videos: decode them once
    curve_subset = (f"features.train_videos={size.curve_videos[0]}", f"features.val_videos={size.curve_videos[1]}")
    probes: dict = {}
    chance = {}

    def run(encoder: dict, kind: str, folder: Path, tasks, extra=()) -> dict:
        cfg = probe_config(
            encoder["checkpoint"],
            folder,
            out / "data",
            size.probe_epochs,
            settings.seed,
            random_model=configs["vjepa"].model if encoder["name"] == RANDOM_INIT else None,
            overrides=(*settings.probe_overrides, *extra),
            kind=kind,
            features_dir=out / "probes" / encoder["name"] / "features",
            tasks=tasks,
        )
        return probe(cfg, log, source)

    for encoder in encoders_to_probe(out, runs):
        name, folder = encoder["name"], out / "probes" / encoder["name"]
        entry = {**encoder, "dir": str(folder), "top1": {}, "curve_top1": {}, "confusion": {}, "seconds": 0.0}
        for kind in PROTOCOLS if encoder["final"] else ():
            result = run(encoder, kind, folder / kind, size.attentive_tasks if kind == "attentive" else TASKS)
            entry["top1"][kind] = top1(result)
            entry["confusion"][kind] = {
                t["name"]: {"classes": t["classes"], "matrix": t["confusion"]}
                for t in result["tasks"]
                if "confusion" in t
            }
            entry["seconds"] += result["seconds"]
            chance.update({t["name"]: t["chance"] for t in result["tasks"]})
        for kind in CURVE_PROTOCOLS:
            result = run(encoder, kind, folder / f"{kind}_curve", TASKS, curve_subset)
            entry["curve_top1"][kind] = top1(result)
            entry["seconds"] += result["seconds"]
            chance.update({t["name"]: t["chance"] for t in result["tasks"]})
        probes[name] = entry
    probes["chance"] = {t: chance[t] for t in TASKS}
    return probes


def write_plots(out: Path, results: dict, configs: dict[str, PretrainConfig]) -> list[Path]:
    """loss_curves.png, accuracy_vs_flops.png and masks.png in `out`."""
    paths = [out / "loss_curves.png", out / "accuracy_vs_flops.png", out / "masks.png"]
    plot_loss_curves({penalty_label(name, [run]): run["dir"] for name, run in results["runs"].items()}, paths[0])
    plot_accuracy_vs_flops(results, paths[1])
    clip, masks = masks_on_a_clip(configs, seed=results["settings"]["seed"])
    cfg = configs["vjepa"]
    draw_masks(masks, paths[2], clip=clip, tubelet=cfg.model.tubelet_size, patch=cfg.model.patch_size, columns=8)
    return paths


def masks_on_a_clip(configs: dict[str, PretrainConfig], seed: int = 0):
    """The first validation clip (T x H x W x 3 in 0..1) and, for each distinct set of masks among the
    configs, one sampled target mask per generator: [(label, bool T' x H' x W' array)]."""
    import torch

    cfg = configs["vjepa"]
    video = build_dataset(cfg.data.val, cfg.data, train=False)[0]["video"]  # C x T x H x W, normalised
    mean, std = torch.tensor(cfg.data.mean).view(3, 1, 1, 1), torch.tensor(cfg.data.std).view(3, 1, 1, 1)
    clip = (video * std + mean).clamp(0, 1).permute(1, 2, 3, 0).numpy()
    groups: dict[tuple, tuple[PretrainConfig, list[str]]] = {}  # mask settings -> a config, the methods using them
    for name, c in configs.items():
        _, methods = groups.setdefault(tuple(describe(m) for m in c.masks), (c, []))
        if METHOD_LABELS[name] not in methods:
            methods.append(METHOD_LABELS[name])
    generators, labels = [], []
    for names, (c, methods) in groups.items():
        generators += build_mask_generators(c)
        labels += [f"{', '.join(methods)}\n{label}" for label in names]
    return clip, sample_masks(generators, labels, samples=1, seed=seed)
