"""Pretrain demo recipes on a demo's videos and probe each with the chosen protocols (one JSON line per
(recipe, task, protocol) in OUT/results.jsonl).

    python experiments/recipe_sweep.py --demo-data runs/demo/data --out runs/sweep --jobs 2 \
        --task motion=runs/demo/data/motion --task motion2=runs/motion2/motion --plan plan.json

plan.json: [{"name": "vjepa_tblock", "method": "vjepa", "steps": 120, "overrides": ["masks=[...]"]}, ...];
a salt_student entry names its teacher's entry with "teacher": NAME (trained first, in the same job; give
the teacher "skip": true to train it only there, not probe it).
Each recipe trains with the demo's code path (`videojepa.demo.run.pretrain_config` + `with_steps`, the
Trainer) into OUT/NAME/run, then `experiments/probe_protocols.py` probes it (OUT/NAME/probes). Jobs run in
parallel, one torch thread each; a finished run or probe is not redone. A recipe line holds the final health
monitors (RankMe, feature/target/prediction std) and the training seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent


def train(entry: dict, plan: dict, args) -> dict:
    from videojepa.demo import run as demo

    out = Path(args.out) / entry["name"]
    teacher = None
    if entry["method"] == "salt_student":
        t = plan[entry["teacher"]]
        train(t, plan, args)
        teacher = demo.pretrain_config("salt_teacher", Path(args.out) / t["name"] / "run", args.demo_data, args.seed)
    cfg = demo.pretrain_config(
        entry["method"], out / "run", args.demo_data, args.seed, teacher=teacher, overrides=entry.get("overrides", [])
    )
    cfg = demo.with_steps(cfg, entry["steps"])
    done = out / "train.json"
    if done.exists():
        return json.loads(done.read_text())
    start = time.perf_counter()
    demo.train(cfg, log=lambda _: None)
    record = {"seconds": round(time.perf_counter() - start, 1), "health": demo.last_health(out / "run")}
    done.write_text(json.dumps(record) + "\n")
    return record


def run_one(entry: dict, plan: dict, args) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    # training in a child process too: each job gets its own torch thread setting
    code = (
        f"import json,sys; sys.path.insert(0, {str(HERE)!r}); import recipe_sweep as r; "
        "print(json.dumps(r.train(json.loads(sys.argv[1]), json.loads(sys.argv[2]), r.parse(sys.argv[3:]))))"
    )
    argv = [sys.executable, "-c", code, json.dumps(entry), json.dumps(plan), *sys.argv[1:]]
    trained = json.loads(
        subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout.splitlines()[-1]
    )
    out = Path(args.out) / entry["name"]
    probes = [
        sys.executable,
        str(HERE / "probe_protocols.py"),
        "--encoder",
        str(out / "run"),
        "--out",
        str(out / "probes"),
    ]
    probes += [a for t in args.task for a in ("--task", t)] + [
        "--kinds",
        *args.kinds,
        "--frame-grid",
        *map(str, args.frame_grid),
    ]
    probes += ["--seed", str(args.seed)]
    result = subprocess.run(probes, env=env, check=True, capture_output=True, text=True)
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return [
        {
            "recipe": entry["name"],
            "method": entry["method"],
            "steps": entry["steps"],
            "overrides": entry.get("overrides", []),
            **row,
            "train": trained,
        }
        for row in rows
    ]


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--demo-data", required=True, help="a demo's data/ folder: pretraining videos")
    parser.add_argument("--out", required=True)
    parser.add_argument("--task", action="append", required=True, help="NAME=FOLDER, as probe_protocols.py")
    parser.add_argument("--kinds", nargs="+", default=["linear_frames", "knn_frames"])
    parser.add_argument("--frame-grid", type=int, nargs="+", default=[2])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main() -> None:
    args = parse()
    entries = json.loads(Path(args.plan).read_text())
    plan = {e["name"]: e for e in entries}
    entries = [e for e in entries if not e.get("skip")]  # "skip": a teacher only, trained by its student's job
    Path(args.out).mkdir(parents=True, exist_ok=True)
    sink = Path(args.out) / "results.jsonl"
    with ThreadPoolExecutor(args.jobs) as pool:
        for rows in pool.map(lambda e: run_one(e, plan, args), entries):
            with sink.open("a") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")
            for row in rows:
                print(
                    row["recipe"],
                    row["task"],
                    row["probe"],
                    f"{100 * row['top1']:.1f}",
                    f"rank {row['train']['health']['feature_rank']:.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
