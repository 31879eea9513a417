"""Throughput of the DT-GAN iteration with 1, 2, ... data-parallel workers (gloo on CPU, nccl on GPUs).

Weak scaling: every worker keeps the same per-worker batch; gradients are averaged after every backward
with ``dtgan.training.environment.all_reduce_gradients``, as the Ray Train workers do. Efficiency at W
workers = images/s(W) / (W * images/s(1)). Prints JSON.

    python benchmarks/ddp_scaling.py --preset tiny --workers 1,2 --threads-per-worker 1   # CPU, gloo
    python benchmarks/ddp_scaling.py --preset paper --workers 1,2,4 --per-worker-batch 8  # GPUs, nccl
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from common import NOT_MEASURED_ON_CPU, base_parser, describe_device, emit, pick_device

EFFICIENCY_TARGET = 0.9
TARGET_GPUS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, args: dict, port: int, out_dir: str) -> None:
    import train_step as bench  # the same random batch and configs as the single-process benchmark

    from dtgan.training.environment import Environment, all_reduce_gradients
    from dtgan.training.state import build_train_state
    from dtgan.training.steps import train_step

    cuda = args["device"] == "cuda"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(args["threads_per_worker"])
    dist.init_process_group(
        "nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        per_worker = args["per_worker_batch"]
        config = bench._config(
            args["preset"],
            args["ablation"],
            per_worker * world_size,
            args["mode"],
            compile_fast=cuda and args["mode"] == "fast",
        )
        env = Environment(
            rank=rank, world_size=world_size, device=device, sync_gradients=all_reduce_gradients
        )
        state = build_train_state(config, bench.NUM_DOMAINS, bench.NUM_PRODUCTS, env)
        batch = bench._random_batch(config, device, seed=rank, batch_size=per_worker)
        times = []
        for i in range(args["warmup"] + args["repeats"]):
            dist.barrier()
            started = time.perf_counter()
            train_step(state, batch, config, all_reduce_gradients)
            if cuda:
                torch.cuda.synchronize(device)
            dist.barrier()  # the iteration ends when the slowest worker is done
            if i >= args["warmup"]:
                times.append(time.perf_counter() - started)
        if rank == 0:
            Path(out_dir, "result.json").write_text(json.dumps({"wall_s": times}))
    finally:
        dist.destroy_process_group()


def run_workers(world_size: int, args: dict) -> list[float]:
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_worker, args=(world_size, args, _free_port(), out_dir), nprocs=world_size, join=True)
        return json.loads(Path(out_dir, "result.json").read_text())["wall_s"]


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--ablation", default="g")
    parser.add_argument(
        "--workers", default=None, help="comma list; default 1,2 on CPU, 1,2,4,... up to the GPUs"
    )
    parser.add_argument("--per-worker-batch", type=int, default=8)
    parser.add_argument(
        "--mode", choices=("plain", "fast"), default=None, help="default fast on CUDA, plain on CPU"
    )
    parser.add_argument("--threads-per-worker", type=int, default=1, help="torch threads of each CPU worker")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    available = torch.cuda.device_count() if cuda else (os.cpu_count() or 1)
    default = [w for w in (1, 2, 4, 8) if w <= available] if cuda else [1, 2]
    workers = [int(w) for w in args.workers.split(",")] if args.workers else default
    if cuda and max(workers) > available:
        raise SystemExit(f"--workers {max(workers)} but only {available} GPUs are visible")
    settings = {
        "device": device.type,
        "preset": args.preset,
        "ablation": args.ablation,
        "per_worker_batch": args.per_worker_batch,
        "mode": args.mode or ("fast" if cuda else "plain"),
        "threads_per_worker": args.threads_per_worker,
        "warmup": args.warmup,
        "repeats": args.repeats,
    }

    runs, base = [], None
    for w in workers:
        wall = statistics.median(run_workers(w, settings))
        images_per_s = w * args.per_worker_batch / wall
        base = base if base is not None else (images_per_s if w == 1 else None)
        row = {
            "workers": w,
            "backend": "nccl" if cuda else "gloo",
            "wall_ms_per_iteration_median": round(1000 * wall, 1),
            "images_per_s": round(images_per_s, 2),
        }
        if base is not None:
            row["scaling_efficiency"] = round(images_per_s / (w * base), 3)
        runs.append(row)

    at_target = [r for r in runs if r["workers"] == TARGET_GPUS and cuda]
    target = (
        {
            "value": at_target[0]["scaling_efficiency"],
            "target": EFFICIENCY_TARGET,
            "met": at_target[0]["scaling_efficiency"] >= EFFICIENCY_TARGET,
        }
        if at_target
        else (
            NOT_MEASURED_ON_CPU.replace("one H100", f"{TARGET_GPUS} GPUs")
            if not cuda
            else f"not measured here: {available} GPU(s) visible, the target is for {TARGET_GPUS}"
        )
    )
    note = (
        None
        if cuda
        else (
            "CPU workers share the host's cores (and, on a shared machine, other users' load): "
            "efficiency here measures gloo all-reduce plus core contention, not GPU scaling"
        )
    )
    emit(
        {
            "benchmark": "ddp_scaling",
            **{k: settings[k] for k in ("preset", "ablation", "per_worker_batch", "mode")},
            "environment": describe_device(device),
            "runs": runs,
            "targets": {f"scaling_efficiency_at_{TARGET_GPUS}_gpus": target},
            "note": note,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
