#!/usr/bin/env python3
"""Ray cluster benchmark: a sweep spread over a local Ray cluster, against the local launcher.

    python bench/ray_cluster.py [--runs 12] [--duration 3] [--nodes 3] [--quick]

Needs Ray (requirements-test.txt) and, as root on Linux, `unshare -n`: Ray binds
to the machine's network address whatever it is told, so the benchmark re-runs
itself in a private network namespace that has only loopback.

1. A local cluster (ray.cluster_utils.Cluster): a head with no CPU for runs and
   --nodes worker nodes of one CPU each. A sweep of --runs stand-in runs of
   --duration seconds, `--ray ADDRESS --num-envs <runs>`: Ray's resources, not
   --num-envs, hold it to one run per node. Ideal makespan =
   ceil(runs / nodes) * duration.
   - makespan ratios: the sweep's whole life (Popen -> exit; it includes
     connecting to the cluster and checking every node) and first run start ->
     last run end (the stand-ins' records), each / ideal;
   - the sweep process's own CPU time / its wall time (the Ray driver's threads
     included; the trainers are the Ray workers' children, not the sweep's).
2. The same sweep with the local launcher at the same concurrency
   (--num-envs <nodes>, no --ray): its makespan ratios and CPU share.
3. A node's death: one run on a cluster of two nodes; once it has trained a
   while, its node is removed (its raylet killed, as when a machine goes away).
   The time from that to the run's trainer starting again, with --resume, on
   the other node. Ray sees a killed raylet's connection drop at once; its
   health checks (here every second, dead after 6 missed; by Ray's defaults
   5 missed 3 s apart) decide only for a machine that stops answering.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SCRIPT, STAND_IN, emit, figure, stop_sweep  # noqa: E402
from helpers import free_port, read_records, wait_until  # noqa: E402  (tests/helpers.py)
from scheduler import sample_sweep  # noqa: E402  (the sweep's own CPU time and peak memory)

INSIDE = "MLAGENTS_SWEEP_BENCH_NETNS"  # set in the namespace the benchmark re-runs itself in
FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
                      "health_check_failure_threshold": 6}  # as in tests/test_ray.py: a loaded machine misses 2 s


def in_namespace() -> None:
    """Re-run this benchmark in a network namespace with only loopback; exits with its status."""
    unshare, sh = shutil.which("unshare"), shutil.which("sh")
    if not sys.platform.startswith("linux") or unshare is None or sh is None:
        raise SystemExit("ray_cluster.py needs Linux and `unshare -n` (as root): Ray must not bind to this machine's address")
    inner = shlex.join([sys.executable, *sys.argv])
    done = subprocess.run([unshare, "-n", sh, "-c", f"ip link set lo up && exec {inner}"], env={**os.environ, INSIDE: "1"})
    raise SystemExit(done.returncode)


def start_cluster(nodes: int, records: Path) -> Any:
    """A head with no CPU and `nodes` one-CPU nodes. A run gets its node's environment, not the
    sweep's: the stand-ins learn where to keep their records from the nodes'."""
    from ray.cluster_utils import Cluster

    records.mkdir(parents=True)
    os.environ["STAND_IN_RECORDS"] = str(records)

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "gcs_server_port": free_port(1), "_system_config": FAST_HEALTH_CHECKS})
    workers = [cluster.add_node(num_cpus=1) for _ in range(nodes)]
    cluster.wait_for_nodes()
    return cluster, workers


def stand_in_config(runs: int, duration: float, points: int) -> str:
    tags = ", ".join(str(n) for n in range(runs))
    return ("behaviors:\n  B:\n    max_steps: 1000\n    summary_freq: 100\n"
            f"stand_in:\n  duration: {duration}\n  points: {points}\n  steps: 1000\n  tag: {{opt_values: [{tags}]}}\n")


def sweep(folder: Path, runs: int, duration: float, num_envs: int, address: str | None, points: int = 0) -> dict[str, Any]:
    """One sweep as a user runs it; its wall time, own CPU, and the stand-ins' records."""
    folder.mkdir(parents=True, exist_ok=True)
    records = folder / "records"
    records.mkdir(exist_ok=True)
    (folder / "sweep.yaml").write_text(stand_in_config(runs, duration, points))
    cluster = ["--ray", address] if address else []
    command = [sys.executable, str(SCRIPT), "sweep.yaml", "--trainer", shlex.join([sys.executable, str(STAND_IN)]),
               "--env=Fake", "--num-envs", str(num_envs), "--base-port", str(free_port()), "--no-tensorboard",
               "--results-dir", "results", "--run-id", "b", *cluster]
    with open(folder / "sweep.out", "wb") as out:
        started = time.time()
        proc = subprocess.Popen(command, cwd=folder, env={**os.environ, "STAND_IN_RECORDS": str(records)},
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        seen = sample_sweep(proc, 0.5)
    finally:
        stop_sweep(proc)
    if proc.returncode != 0:
        raise SystemExit(f"the sweep failed (exit {proc.returncode}):\n{(folder / 'sweep.out').read_text()[-3000:]}")
    found = read_records(records)
    if sorted(rec["run_id"] for rec in found) != sorted(f"b-{n}" for n in range(runs)):
        raise SystemExit(f"expected each of {runs} runs trained once, got {[rec['run_id'] for rec in found]}")
    first, last = min(rec["launched"] for rec in found), max(rec["end"] for rec in found)
    inside = [(when, cpu) for when, cpu in seen["samples"] if first <= when <= last]  # while runs train
    steady = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]) if len(inside) >= 2 else None
    return {"wall": seen["exited"] - started, "own_cpu": seen["own_cpu"], "steady": steady, "records": found}


def makespans(seen: dict[str, Any], ideal: float) -> tuple[float, float]:
    records = seen["records"]
    runs = max(rec["end"] for rec in records) - min(rec["launched"] for rec in records)
    return seen["wall"] / ideal, runs / ideal


def node_death(folder: Path, duration: float) -> float:
    """Seconds from a node's removal to its run's trainer starting again on the other node."""
    records = folder / "records"
    cluster, workers = start_cluster(2, records)
    try:
        (folder / "sweep.yaml").write_text(stand_in_config(1, duration, 10))
        command = [sys.executable, str(SCRIPT), "sweep.yaml", "--trainer", shlex.join([sys.executable, str(STAND_IN)]),
                   "--env=Fake", "--base-port", str(free_port()), "--no-tensorboard", "--results-dir", "results",
                   "--run-id", "b", "--ray", cluster.address]
        with open(folder / "sweep.out", "wb") as out:
            proc = subprocess.Popen(command, cwd=folder, env={**os.environ, "STAND_IN_RECORDS": str(records)},
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: any((rec["last_step"] or 0) >= 200 for rec in read_records(records)), 120)
            state = json.loads((folder / "results" / "b-sweep" / "sweep_state.json").read_text())
            where = state["runs"][0]["sessions"][-1]["node"].split("/")[-1]
            doomed = next(node for node in workers if node.node_id[:8] == where)
            removed = time.time()
            cluster.remove_node(doomed, allow_graceful=False)
            again = wait_until(lambda: [rec for rec in read_records(records) if rec["resumed"]], 120)
            proc.wait(120)
        finally:
            stop_sweep(proc)
        if proc.returncode != 0:
            raise SystemExit(f"the node-death sweep failed (exit {proc.returncode}):\n{(folder / 'sweep.out').read_text()[-3000:]}")
        return again[0]["launched"] - removed
    finally:
        cluster.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="6 runs of 1.5 s: a smoke run")
    args = parser.parse_args()
    if not os.environ.get(INSIDE):
        in_namespace()
    if args.quick:
        args.runs, args.duration = 6, 1.5
    ideal = math.ceil(args.runs / args.nodes) * args.duration
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        print(f"Ray: {args.runs} runs x {args.duration:g} s on {args.nodes} one-CPU nodes (ideal {ideal:g} s) ...", flush=True)
        cluster, _ = start_cluster(args.nodes, Path(tmp) / "ray" / "records")
        try:
            on_ray = sweep(Path(tmp) / "ray", args.runs, args.duration, args.runs, cluster.address)
        finally:
            cluster.shutdown()
        print(f"local launcher: the same runs, {args.nodes} at once ...", flush=True)
        local = sweep(Path(tmp) / "local", args.runs, args.duration, args.nodes, None)
        print("a node dies mid-run ...", flush=True)
        restart = node_death(Path(tmp) / "death", max(4 * args.duration, 8.0))
    ray_sweep, ray_runs = makespans(on_ray, ideal)
    local_sweep, local_runs = makespans(local, ideal)
    ray_share, local_share = 100 * on_ray["own_cpu"] / on_ray["wall"], 100 * local["own_cpu"] / local["wall"]
    ray_steady, local_steady = (None if seen["steady"] is None else 100 * seen["steady"] for seen in (on_ray, local))
    print(f"Ray:   sweep {on_ray['wall']:.1f} s ({ray_sweep:.2f} x ideal), runs {ray_runs:.2f} x ideal, "
          f"driver CPU {on_ray['own_cpu']:.2f} s ({ray_share:.1f}% of one core; {ray_steady or 0:.1f}% while runs train)", flush=True)
    print(f"local: sweep {local['wall']:.1f} s ({local_sweep:.2f} x ideal), runs {local_runs:.2f} x ideal, "
          f"sweep CPU {local['own_cpu']:.2f} s ({local_share:.1f}%; {local_steady or 0:.1f}% while runs train)", flush=True)
    print(f"node death -> the run's trainer started again on another node: {restart:.1f} s", flush=True)
    emit("ray_cluster", [
        figure("ray_makespan_ratio_runs", ray_runs, "x", "<= 1.10", "first run start -> last run end / ideal, on the cluster"),
        figure("ray_makespan_ratio_sweep", ray_sweep, "x", None,
               "the sweep's whole life / ideal: connecting to the cluster and checking its nodes included"),
        figure("local_makespan_ratio_runs", local_runs, "x", None, "the same runs with the local launcher, as many at once"),
        figure("local_makespan_ratio_sweep", local_sweep, "x", None, "its whole life / ideal"),
        figure("ray_vs_local_runs", ray_runs / local_runs, "x", None, "the cluster's runs makespan / the local launcher's"),
        figure("ray_driver_cpu_share_pct", ray_share, "%", None,
               "the sweep's own CPU / its wall time, importing Ray and connecting included (Ray's driver threads in it)"),
        figure("ray_driver_cpu_share_steady_pct", ray_steady, "%", "< 5", "the same, while runs train"),
        figure("local_sweep_cpu_share_pct", local_share, "%", None, "the same for the local launcher"),
        figure("local_sweep_cpu_share_steady_pct", local_steady, "%", None, "the same, while runs train"),
        figure("node_death_restart_s", restart, "s", None,
               "node removed (its raylet killed) -> its run's trainer starts again elsewhere"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
