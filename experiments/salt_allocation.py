"""SALT's compute split: the student's probe accuracy against the teacher's share of a fixed FLOPs budget.

    python experiments/salt_allocation.py                       # JSON to stdout, work in runs/salt_allocation
    python experiments/salt_allocation.py --shares 0.1,0.2,0.4,0.6 --seeds 3 --jobs 8 --out allocation.json
    python experiments/salt_allocation.py --quick --seeds 1 --jobs 2       # a first look

The budget is the demo's (`videojepa.demo.SIZES`; `--budget-steps` V-JEPA steps' FLOPs). For every
(teacher share, seed) one job trains a SALT teacher on `share` of the budget, then a student on the rest,
then probes the student on motion and appearance: the same configs, budget arithmetic, training and
probing as `videojepa demo` (the functions of `videojepa.demo.run`), in WORK/runs/share<F>-seed<S>/.
The synthetic data is rendered once PER SEED (WORK/data/seed<S>, shared by all shares), so the spread
over seeds covers the data, the weights, the masks and the probes.

Jobs run in `--jobs` spawned processes with `--threads` torch threads each (default: the CPUs shared
out); a job's log goes to its folder's job.log. Pretraining uses CUDA when there is a GPU (all jobs
share it); probes run on the CPU. Everything resumes: finished runs and probes are kept, so an
interrupted sweep continues where it stopped when run again with the same arguments.

Output JSON: {"settings", "budget", "records": [one per job: share, seed, teacher/student steps, FLOPs
and wall time, student top-1 per task, health], "summary": [per share: runs, mean and std of top-1 per
task], "table": the Markdown table, "plot": PNG path}; the table also goes to WORK/salt_allocation.md and
the plot (top-1 against teacher share, mean +- std over seeds) to WORK/salt_allocation.png.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import contextlib
import dataclasses
import json
import multiprocessing
import os
import statistics
import sys
from pathlib import Path

from videojepa.demo import run as demo


def job_configs(work: Path, share: float, seed: int, overrides: tuple[str, ...]) -> dict:
    """The teacher and student of one job, and the V-JEPA config that prices the budget."""
    data, runs = work / "data" / f"seed{seed}", work / "runs" / f"share{share:g}-seed{seed}"
    teacher = demo.pretrain_config("salt_teacher", runs / "salt_teacher", data, seed, overrides=overrides)
    student = demo.pretrain_config(
        "salt_student", runs / "salt_student", data, seed, teacher=teacher, overrides=overrides
    )
    vjepa = demo.pretrain_config("vjepa", runs / "vjepa", data, seed, overrides=overrides)  # never trained
    return {"salt_teacher": teacher, "salt_student": student, "vjepa": vjepa}


def run_job(
    work: Path,
    share: float,
    seed: int,
    size: demo.DemoSize,
    overrides: tuple[str, ...],
    probe_overrides: tuple[str, ...],
) -> dict:
    """Teacher, then student, then the student's probe; returns the job's record."""
    configs = job_configs(work, share, seed, overrides)
    plan = demo.plan_budget(configs, size.budget_steps, share)
    record = {"share": share, "seed": seed, "budget": plan["flops"]}
    for name in ("salt_teacher", "salt_student"):
        row = plan["runs"][name]
        trained = demo.train(demo.with_steps(configs[name], row["steps"]), log=print)
        record[name] = {
            "steps": row["steps"],
            "flops": row["flops"],
            "wall_s": trained["wall_s"],
            "health": demo.last_health(trained["dir"]),
        }
    student_dir = Path(configs["salt_student"].run.dir)
    cfg = demo.probe_config(
        student_dir,
        student_dir.parent / "probe",
        work / "data" / f"seed{seed}",
        size.probe_epochs,
        seed,
        overrides=probe_overrides,
    )
    results = demo.probe(cfg, log=print)
    record["top1"] = demo.top1(results)
    record["chance"] = {t["name"]: t["chance"] for t in results["tasks"]}
    record["salt_flops"] = record["salt_teacher"]["flops"] + record["salt_student"]["flops"]
    return record


def logged_job(threads: int, work: Path, share: float, seed: int, *args) -> dict:
    """`run_job` in a worker process: its own torch threads, its output in the job folder's job.log."""
    import torch

    torch.set_num_threads(threads)
    log = work / "runs" / f"share{share:g}-seed{seed}" / "job.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        return run_job(work, share, seed, *args)


def summarise(records: list[dict], shares: list[float], tasks=demo.TASKS) -> list[dict]:
    rows = []
    for share in shares:
        mine = [r for r in records if r["share"] == share]
        row = {
            "share": share,
            "runs": len(mine),
            "teacher_steps": mine[0]["salt_teacher"]["steps"] if mine else None,
            "student_steps": mine[0]["salt_student"]["steps"] if mine else None,
        }
        for task in tasks:
            scores = [r["top1"][task] for r in mine]
            row[task] = {
                "mean": statistics.fmean(scores) if scores else None,
                "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
            }
        rows.append(row)
    return rows


def markdown(summary: list[dict], budget: float, chance: dict, tasks=demo.TASKS) -> str:
    lines = [
        f"SALT student at a fixed budget of {budget:.3g} FLOPs (teacher + student); attentive-probe "
        f"top-1 (%) on validation, mean +- std over seeds.",
        "",
        "| teacher share | teacher + student steps | seeds | " + " | ".join(f"{t} top-1" for t in tasks) + " |",
        "|---" * (3 + len(tasks)) + "|",
    ]
    for row in summary:
        cells = [
            f"{100 * row[t]['mean']:.1f} +- {100 * row[t]['std']:.1f}" if row[t]["mean"] is not None else "-"
            for t in tasks
        ]
        lines.append(
            f"| {row['share']:g} | {row['teacher_steps']} + {row['student_steps']} | {row['runs']} | "
            + " | ".join(cells)
            + " |"
        )
    lines.append("| chance | - | - | " + " | ".join(f"{100 * chance[t]:.1f}" for t in tasks) + " |")
    return "\n".join(lines) + "\n"


def plot(summary: list[dict], chance: dict, path: Path, tasks=demo.TASKS) -> None:
    from videojepa.utils.plotting import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.2), squeeze=False)
    shares = [r["share"] for r in summary if r["runs"]]
    for ax, task in zip(axes[0], tasks):
        means = [100 * r[task]["mean"] for r in summary if r["runs"]]
        stds = [100 * r[task]["std"] for r in summary if r["runs"]]
        ax.errorbar(shares, means, yerr=stds, marker="o", capsize=3, label="SALT student")
        ax.axhline(100 * chance[task], color="grey", ls=":", lw=1, label="chance")
        ax.set_ylim(0, 100)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("teacher share of the training FLOPs", fontsize=8)
        ax.set_ylabel("probe top-1 (%)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--work", default="runs/salt_allocation", help="data, run directories, table and plot")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--shares", default="0.1,0.2,0.4,0.6", help="teacher shares of the budget, comma separated")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per share")
    parser.add_argument("--quick", action="store_true", help="the demo's --quick sizes instead of its full ones")
    parser.add_argument("--budget-steps", type=int, help="budget in V-JEPA steps (default: the demo's)")
    parser.add_argument("--num-videos", type=int, help="synthetic videos per seed (default: the demo's)")
    parser.add_argument("--probe-epochs", type=int, help="probe epochs (default: the demo's)")
    parser.add_argument("--jobs", type=int, default=1, help="jobs run at once, each in its own process")
    parser.add_argument("--threads", type=int, help="torch threads per job (default: CPUs / jobs)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for every pretraining config (repeatable)",
    )
    parser.add_argument(
        "--probe-set",
        dest="probe_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for every probe config (repeatable)",
    )
    args = parser.parse_args()

    shares = [float(s) for s in args.shares.split(",") if s.strip()]
    given = {"budget_steps": args.budget_steps, "num_videos": args.num_videos, "probe_epochs": args.probe_epochs}
    size = dataclasses.replace(
        demo.SIZES["quick" if args.quick else "full"], **{k: v for k, v in given.items() if v is not None}
    )
    work, seeds = Path(args.work), list(range(args.seeds))
    threads = args.threads or max(1, (os.cpu_count() or 1) // max(args.jobs, 1))
    overrides, probe_overrides = tuple(args.overrides), tuple(args.probe_overrides)

    log = lambda text: print(text, file=sys.stderr)  # noqa: E731 - stdout is for the JSON
    for seed in seeds:  # before the jobs: rendering uses every CPU by itself
        demo.prepare_data(work / "data" / f"seed{seed}", size, seed, log=log)
    budget = demo.plan_budget(job_configs(work, shares[0], seeds[0], overrides), size.budget_steps, shares[0])

    jobs = [(share, seed) for share in shares for seed in seeds]
    records = []

    def finished(share: float, seed: int, get_record) -> None:
        try:
            records.append(get_record())
            scores = ", ".join(f"{t} {100 * v:.1f}" for t, v in records[-1]["top1"].items())
        except Exception as err:  # one failed job must not lose the others' results
            records.append({"share": share, "seed": seed, "error": f"{type(err).__name__}: {err}"})
            scores = f"FAILED ({records[-1]['error']})"
        log(f"job {len(records)}/{len(jobs)}: teacher share {share:g}, seed {seed}: {scores}")

    if args.jobs <= 1:
        import torch

        torch.set_num_threads(threads)
        with contextlib.redirect_stdout(sys.stderr):
            for share, seed in jobs:
                finished(share, seed, lambda: run_job(work, share, seed, size, overrides, probe_overrides))
    else:
        context = multiprocessing.get_context("spawn")  # safe with CUDA and with torch's thread pools
        with futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            pending = {
                pool.submit(logged_job, threads, work, share, seed, size, overrides, probe_overrides): (share, seed)
                for share, seed in jobs
            }
            for done in futures.as_completed(pending):
                finished(*pending[done], done.result)
    records.sort(key=lambda r: (r["share"], r["seed"]))

    failed = [r for r in records if "error" in r]
    records = [r for r in records if "error" not in r]
    if not records:
        sys.exit(f"every job failed; see the job.log files under {work / 'runs'}")
    chance = records[0]["chance"]
    summary = summarise(records, shares)
    table = markdown(summary, budget["flops"], chance)
    (work / "salt_allocation.md").write_text(table)
    plot(summary, chance, work / "salt_allocation.png")
    sizes = {k: v for k, v in dataclasses.asdict(size).items() if k != "teacher_share"}  # shares replace it
    result = {
        "settings": {
            **sizes,
            "shares": shares,
            "seeds": seeds,
            "jobs": args.jobs,
            "threads": threads,
            "overrides": list(overrides),
            "probe_overrides": list(probe_overrides),
            "data": "rendered once per seed",
        },
        "budget": {k: v for k, v in budget.items() if k not in ("runs", "teacher_share")},
        "chance": chance,
        "records": records,
        "failed": failed,
        "summary": summary,
        "table": table,
        "plot": str(work / "salt_allocation.png"),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    log(table)


if __name__ == "__main__":
    main()
