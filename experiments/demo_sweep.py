"""Calibration sweep for the demo: pretrain + probe many (dataset, recipe) pairs in parallel processes.

The demo's recipe and its motion task were chosen with this script (EXPERIMENTS.md lists the runs).
A JSON plan names synthetic datasets and jobs; each job trains zero or more stages through the CLI
(`videojepa pretrain PRESET key=value ...`, a stage may point at an earlier stage's run with
"{run:NAME}") and probes the last stage's encoder (or a random-init one when it has no stage).

    python experiments/demo_sweep.py plan.json --out sweep/ --jobs 8 --threads 2

plan.json:
    {"datasets": {"m6": {"num_videos": 1600, "motions": [...], "spec": {"object_size": [0.2, 0.3]}}},
     "probe": ["optim.epochs=20"],                                   # overrides for every probe
     "jobs": [{"name": "rand", "data": "m6", "probe": ["model.pos_embed=rope"]},
              {"name": "vj", "data": "m6", "stages": [{"name": "vjepa", "preset": "demo/vjepa",
                                                      "overrides": ["train.steps=600"]}]}]}

Output: OUT/summary.json, one record per job: per-task top-1, chance, and the final health monitors
(RankMe, feature/target/prediction std) of every stage; plus each job's logs under OUT/<job>/.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import json
import os
import subprocess
import sys
import time

from videojepa.demo.run import last_health


def synth(out: str, name: str, spec: dict, workers: int) -> str:
    from videojepa.data.synth import DEFAULT_MOTIONS, SynthSpec, write_dataset

    folder = os.path.join(out, "data", name)
    if not os.path.exists(os.path.join(folder, "synth.json")):
        render = SynthSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.get("spec", {}).items()})
        write_dataset(
            folder,
            num_videos=spec.get("num_videos", 1600),
            frames=spec.get("frames", 16),
            size=spec.get("size", 64),
            seed=spec.get("seed", 0),
            workers=workers,
            motions=spec.get("motions", DEFAULT_MOTIONS),
            spec=render,
        )
    return folder


def run_job(job: dict, out: str, data: dict, probe_overrides: list, threads: int) -> dict:
    job_dir = os.path.join(out, job["name"])
    os.makedirs(job_dir, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    folder = data[job["data"]]
    record = {"name": job["name"], "data": job["data"], "stages": [], "seconds": {}}
    runs = {}

    def call(args: list, log: str) -> None:
        start = time.perf_counter()
        with open(os.path.join(job_dir, log), "w") as f:
            proc = subprocess.run(
                [sys.executable, "-m", "videojepa", *args], stdout=f, stderr=subprocess.STDOUT, env=env
            )
        record["seconds"][log] = round(time.perf_counter() - start, 1)
        if proc.returncode:
            raise RuntimeError(f"{job['name']}: {' '.join(args[:2])} failed (see {job_dir}/{log})")

    try:
        for stage in job.get("stages", []):
            run_dir = os.path.join(job_dir, stage["name"])
            runs[stage["name"]] = run_dir
            overrides = list(stage.get("overrides", []))
            for earlier, path in runs.items():
                overrides = [o.replace(f"{{run:{earlier}}}", path) for o in overrides]
            call(
                [
                    "pretrain",
                    stage.get("preset", "demo/vjepa"),
                    f"run.dir={run_dir}",
                    f"data.train={folder}/motion/train.csv",
                    f"data.val={folder}/motion/val.csv",
                    *overrides,
                ],
                f"{stage['name']}.log",
            )
            record["stages"].append({"name": stage["name"], **last_health(run_dir)})
        checkpoint = runs[job["stages"][-1]["name"]] if job.get("stages") else "none"
        probe_dir = os.path.join(job_dir, "probe")
        call(
            [
                "probe",
                job.get("probe_preset", "demo/probe"),
                f"run.dir={probe_dir}",
                f"probe.checkpoint={checkpoint}",
                f"tasks.0.train={folder}/motion/train.csv",
                f"tasks.0.val={folder}/motion/val.csv",
                f"tasks.1.train={folder}/appearance/train.csv",
                f"tasks.1.val={folder}/appearance/val.csv",
                *probe_overrides,
                *job.get("probe", []),
            ],
            "probe.log",
        )
        with open(os.path.join(probe_dir, "results.json")) as f:
            results = json.load(f)
        record["tasks"] = {
            t["name"]: {"top1": t["top1"], "chance": t["chance"], "best": t["best"]} for t in results["tasks"]
        }
    except Exception as error:  # one failed job must not stop the sweep
        record["error"] = str(error)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan", help="JSON plan (see above)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--jobs", type=int, default=2, help="jobs run at the same time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    args = parser.parse_args()
    with open(args.plan) as f:
        plan = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    data = {name: synth(args.out, name, spec, os.cpu_count() or 1) for name, spec in plan["datasets"].items()}
    records = []
    with futures.ThreadPoolExecutor(args.jobs) as pool:
        todo = [pool.submit(run_job, job, args.out, data, plan.get("probe", []), args.threads) for job in plan["jobs"]]
        for done in futures.as_completed(todo):
            record = done.result()
            records.append(record)
            tasks = {k: round(v["top1"], 3) for k, v in record.get("tasks", {}).items()}
            ranks = [round(s["feature_rank"] or 0, 1) for s in record["stages"]]
            print(
                json.dumps(
                    {
                        "job": record["name"],
                        **tasks,
                        "rank": ranks,
                        "error": record.get("error"),
                        "s": sum(record["seconds"].values()),
                    }
                ),
                flush=True,
            )
            with open(os.path.join(args.out, "summary.json"), "w") as f:
                json.dump(sorted(records, key=lambda r: r["name"]), f, indent=1)


if __name__ == "__main__":
    main()
