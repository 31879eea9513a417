"""The first run on a lent GPU: one command, at most ~10 minutes, offline, writes one JSON file.

What it records, section by section (each section is timed; one that fails records its one-line error and the
next runs; the JSON is rewritten after every section, so a run cut short keeps what it measured):

- ``versions``: torch, CUDA, cuDNN, torch-fidelity, Python, the GPU's name, memory and compute capability.
- ``flags``: bf16 support (native or emulated), the TF32 switches, and the speed options "auto" resolves to here.
- ``r1_channels_last``: one R1 double backward of the paper's D with channels_last against the contiguous one
  (values, gradients, time).
- ``steps``: ms per iteration of the tiny and paper steps per mode (plain, each option alone, auto, auto with
  lazy R1) at batch 4 and 32 (``benchmarks/train_step.py``'s measure).
- ``profile``: kernels per iteration and CPU-enqueue vs GPU-busy time (torch.profiler) of the paper step at
  batch 4, plain and auto: is the step launch-bound?
- ``train_resume``: ``dtgan train`` for half the steps, then ``--resume`` to 300 on synthesized data; wall times,
  images/s, and whether the resumed run reached its last step.
- ``kid``: KID in torch on the GPU (``dtgan.evaluation.kid``) against torch-fidelity's NumPy KID, time and values.
- ``evaluation``: generation and feature images/s (``benchmarks/evaluate.py``).

    python benchmarks/gpu_check.py --out benchmarks/gpu_check_h100.json      # on the GPU machine
    python benchmarks/gpu_check.py --cpu-smoke --out /tmp/gpu_check.json      # every non-CUDA part, tiny sizes
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
from common import PLATFORM_DIR, base_parser, describe_device

BENCHMARKS = Path(__file__).resolve().parent
SECTIONS = (
    "versions",
    "flags",
    "r1_channels_last",
    "steps",
    "profile",
    "train_resume",
    "kid",
    "evaluation",
)
NUM_DOMAINS = NUM_PRODUCTS = 3


@dataclass(frozen=True)
class Sizes:
    """How much each section does: the GPU run's sizes, or the CPU smoke's."""

    presets: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    modes: tuple[str, ...]
    lazy_batch_sizes: tuple[int, ...]  # lazy R1 is timed over whole cycles: only where it is cheap enough
    r1_every: int
    warmup: int
    repeats: int
    r1_preset: str
    r1_batch: int
    profile_preset: str
    profile_batch: int
    profile_iterations: int
    train_preset: str
    train_steps: int
    kid_images: int
    kid_dim: int
    kid_subsets: int
    kid_subset_size: int
    evaluation_args: tuple[str, ...]
    budget_s: float


GPU = Sizes(
    presets=("tiny", "paper"),
    batch_sizes=(4, 32),
    modes=("plain", "bf16", "channels_last", "fused_adam", "auto", "auto+lazy_r1"),
    lazy_batch_sizes=(4, 32),
    r1_every=16,
    warmup=2,
    repeats=5,
    r1_preset="paper",
    r1_batch=4,
    profile_preset="paper",
    profile_batch=4,
    profile_iterations=5,
    train_preset="tiny",
    train_steps=300,
    kid_images=5000,
    kid_dim=2048,
    kid_subsets=100,
    kid_subset_size=1000,
    evaluation_args=("--preset", "paper", "--images", "2048", "--repeats", "2"),
    budget_s=540.0,
)
CPU_SMOKE = Sizes(
    presets=("tiny",),
    batch_sizes=(2,),
    modes=("plain", "auto+lazy_r1"),
    lazy_batch_sizes=(2,),
    r1_every=2,
    warmup=0,
    repeats=1,
    r1_preset="tiny",
    r1_batch=2,
    profile_preset="tiny",
    profile_batch=2,
    profile_iterations=1,
    train_preset="tiny",
    train_steps=4,
    kid_images=40,
    kid_dim=32,
    kid_subsets=3,
    kid_subset_size=20,
    evaluation_args=(
        "--preset",
        "tiny",
        "--images",
        "4",
        "--batch-size",
        "4",
        "--repeats",
        "1",
        "--threads",
        "1",
    ),
    budget_s=600.0,
)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def versions(device: torch.device, sizes: Sizes) -> dict:
    import torch_fidelity

    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "torch_fidelity": torch_fidelity.__version__,
        "python": sys.version.split()[0],
        "dtgan_source": PLATFORM_DIR,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "gpu": props.name,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "compute_capability": list(torch.cuda.get_device_capability(device)),
            "gpus_visible": torch.cuda.device_count(),
        }
    return info


def flags(device: torch.device, sizes: Sizes) -> dict:
    from dtgan.config.loader import load_config
    from dtgan.training.performance import Performance

    info = {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }
    if device.type == "cuda":
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
        info["bf16_native"] = torch.cuda.is_bf16_supported(including_emulation=False)
    resolved = Performance.resolve(load_config("paper").train.performance, device)
    info["auto_resolves_to"] = {k: v for k, v in vars(resolved).items()}
    return info


def r1_channels_last(device: torch.device, sizes: Sizes) -> dict:
    """One R1 double backward of D in both layouts: same values and gradients, and the time of each."""
    from dtgan.config.loader import load_config
    from dtgan.losses.adversarial import r1_penalty
    from dtgan.models import build_nets

    config = load_config(sizes.r1_preset)
    torch.manual_seed(0)
    d = build_nets(config.model, num_domains=NUM_DOMAINS, num_products=NUM_PRODUCTS).discriminator.to(device)
    side = config.model.img_size
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(sizes.r1_batch, 3, side, side, generator=g) * 2 - 1).to(device)
    y = torch.randint(0, NUM_DOMAINS, (sizes.r1_batch,), generator=g).to(device)
    out = {}
    for layout in ("contiguous", "channels_last"):
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        d = d.to(memory_format=fmt)
        x_real = x.contiguous(memory_format=fmt).requires_grad_(True)
        times = []
        for _ in range(3):  # the first includes cuDNN's algorithm choice
            d.zero_grad(set_to_none=True)
            _synchronize(device)
            started = time.perf_counter()
            penalty = r1_penalty(d(x_real, y).logits, x_real)
            penalty.backward()
            _synchronize(device)
            times.append(time.perf_counter() - started)
        grads = torch.cat([p.grad.flatten() for p in d.parameters() if p.grad is not None])
        out[layout] = {"r1": penalty.item(), "grads": grads, "ms": round(1000 * min(times[1:] or times), 2)}
    a, b = out["contiguous"], out["channels_last"]
    scale = a["grads"].abs().max().clamp_min(1e-30)
    return {
        "r1_contiguous": a["r1"],
        "r1_channels_last": b["r1"],
        "r1_rel_diff": abs(a["r1"] - b["r1"]) / max(abs(a["r1"]), 1e-30),
        "grad_max_abs_diff_over_max": float((a["grads"] - b["grads"]).abs().max() / scale),
        "ms_contiguous": a["ms"],
        "ms_channels_last": b["ms"],
        "finite": bool(torch.isfinite(b["grads"]).all()),
        "preset": sizes.r1_preset,
        "batch_size": sizes.r1_batch,
    }


def steps(device: torch.device, sizes: Sizes) -> dict:
    import train_step as bench

    rows = []
    for preset in sizes.presets:
        for batch in sizes.batch_sizes:
            row = {"preset": preset, "batch_size": batch}
            for mode in sizes.modes:
                lazy = mode.endswith(bench.LAZY_SUFFIX)
                if lazy and batch not in sizes.lazy_batch_sizes:
                    continue
                config = bench._config(preset, "g", batch, mode, False, sizes.r1_every)
                repeats = max(1, sizes.repeats // (3 if lazy else 1))  # a lazy call is r1_every iterations
                try:
                    row[mode] = bench.measure(
                        config, device, min(sizes.warmup, 1 if lazy else 9), repeats, False
                    )
                    row[mode]["options"] = {k: v for k, v in bench.resolved_options(config, device).items()}
                except torch.cuda.OutOfMemoryError as exc:
                    row[mode] = {"error": f"out of memory: {str(exc).splitlines()[0]}"}
                gc.collect()  # after the except block: the traceback no longer holds the failed state
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            clock = "wall" if device.type == "cuda" else "cpu"
            base = row.get("plain", {}).get(f"{clock}_ms_per_iteration_median")
            for mode in sizes.modes:
                ms = row.get(mode, {}).get(f"{clock}_ms_per_iteration_median")
                if base and ms and mode != "plain":
                    row[f"{mode}_speedup"] = round(base / ms, 2)
            rows.append(row)
    return {"runs": rows, "r1_every": sizes.r1_every, "ablation": "g"}


def _kernel_events(prof) -> tuple[int, float]:
    """(kernel launches, summed kernel time in ms) of a profile: its device-side events."""
    launches, busy_us = 0, 0.0
    for event in prof.key_averages():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            launches += event.count
            busy_us += getattr(event, "self_device_time_total", 0.0)
    return launches, busy_us / 1000


def profile(device: torch.device, sizes: Sizes) -> dict:
    """Per iteration: kernels launched, CPU time to enqueue the step, GPU-busy time, wall time."""
    import train_step as bench
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from dtgan.training.environment import Environment
    from dtgan.training.state import build_train_state
    from dtgan.training.steps import train_step

    n = sizes.profile_iterations
    out = {"preset": sizes.profile_preset, "batch_size": sizes.profile_batch, "iterations": n}
    for mode in ("plain", "auto"):
        config = bench._config(sizes.profile_preset, "g", sizes.profile_batch, mode, False)
        state = build_train_state(config, NUM_DOMAINS, NUM_PRODUCTS, Environment(device=device))
        batch = bench._random_batch(config, device, seed=0)
        train_step(state, batch, config)  # warm-up (cuDNN algorithm choice, allocator)
        _synchronize(device)
        started = time.perf_counter()
        for _ in range(n):
            train_step(state, batch, config)
        enqueued = time.perf_counter() - started  # the CPU's time to issue the work
        _synchronize(device)
        wall = time.perf_counter() - started
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch_profile(activities=activities) as prof:
            for _ in range(n):
                train_step(state, batch, config)
            _synchronize(device)
        launches, busy_ms = _kernel_events(prof)
        cpu_ops = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))
        out[mode] = {
            "kernels_per_iteration": launches / n if device.type == "cuda" else None,
            "gpu_busy_ms_per_iteration": round(busy_ms / n, 2) if device.type == "cuda" else None,
            "cpu_enqueue_ms_per_iteration": round(1000 * enqueued / n, 2),
            "wall_ms_per_iteration": round(1000 * wall / n, 2),
            "aten_calls_per_iteration": cpu_ops / n,  # nested calls included
            "options": {k: v for k, v in bench.resolved_options(config, device).items()},
        }
        del state
    return out


def _dtgan(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([PLATFORM_DIR, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "dtgan", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def _last_metrics(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1]) if lines else {}


def train_resume(device: torch.device, sizes: Sizes) -> dict:
    """``dtgan train`` to half the steps (a checkpoint there), then ``--resume`` to the end."""
    from dtgan.data.synth import synthesize_benchmark

    total, half = sizes.train_steps, sizes.train_steps // 2
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "benchmark.parquet"
        synthesize_benchmark(str(data), size=32, scale=0.02, seed=0)
        common = [
            f"data.path={data}",
            f"train.out_dir={tmp}/runs",
            "train.run_name=check",
            f"train.device={device.type}",
            f"train.checkpoint_every_steps={half}",
            f"train.sample_every_steps={total}",
            f"train.log_every_steps={max(1, half // 3)}",
        ]
        out = {"preset": sizes.train_preset, "steps": total, "resumed_at": half}
        for phase, steps_, extra in (("first_half", half, []), ("resumed", total, ["--resume"])):
            args = ["train", "-c", sizes.train_preset, *extra]
            for override in [*common, f"train.total_steps={steps_}"]:
                args += ["-o", override]
            started = time.perf_counter()
            done = _dtgan(args, timeout=300)
            out[phase] = {"wall_s": round(time.perf_counter() - started, 2), "returncode": done.returncode}
            if done.returncode != 0:
                out[phase]["stderr_tail"] = done.stderr[-2000:]
                return out
            metrics = _last_metrics(Path(tmp) / "runs" / "check")
            out[phase]["last_step"] = metrics.get("step")
            out[phase]["images_per_s"] = metrics.get("train/images_per_s")
            out[phase]["step_ms"] = metrics.get("train/step_ms")
        out["resumed_to_the_end"] = out["resumed"].get("last_step") == total
        return out


def kid(device: torch.device, sizes: Sizes) -> dict:
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

    from dtgan.evaluation.kid import kid_from_features

    g = torch.Generator().manual_seed(0)
    fake = (torch.randn(sizes.kid_images, sizes.kid_dim, generator=g) + 0.5).relu()
    real = (torch.randn(sizes.kid_images, sizes.kid_dim, generator=g) + 0.45).relu()
    kwargs = {"subsets": sizes.kid_subsets, "subset_size": sizes.kid_subset_size, "seed": 777}
    kid_from_features(fake[:50], real[:50], subsets=1, subset_size=10, seed=0, device=device)  # warm-up
    started = time.perf_counter()
    mean, std = kid_from_features(fake, real, device=device, **kwargs)
    torch_s = time.perf_counter() - started
    started = time.perf_counter()
    reference = kid_features_to_metric(
        fake,
        real,
        kid_subsets=sizes.kid_subsets,
        kid_subset_size=sizes.kid_subset_size,
        rng_seed=777,
        verbose=False,
    )
    numpy_s = time.perf_counter() - started
    return {
        "images": sizes.kid_images,
        "dim": sizes.kid_dim,
        "subsets": sizes.kid_subsets,
        "subset_size": sizes.kid_subset_size,
        "torch_on_device_s": round(torch_s, 3),
        "torch_fidelity_numpy_s": round(numpy_s, 3),
        "kid_torch": mean,
        "kid_std_torch": std,
        "kid_torch_fidelity": reference[KEY_METRIC_KID_MEAN],
        "abs_diff": abs(mean - reference[KEY_METRIC_KID_MEAN]),
        "cpu_threads": torch.get_num_threads(),
    }


def evaluation(device: torch.device, sizes: Sizes) -> dict:
    command = [
        sys.executable,
        str(BENCHMARKS / "evaluate.py"),
        "--device",
        device.type,
        *sizes.evaluation_args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(done.stdout)
    return {k: result[k] for k in ("preset", "img_size", "batch_size", "generation", "features")}


RUNNERS = {
    "versions": versions,
    "flags": flags,
    "r1_channels_last": r1_channels_last,
    "steps": steps,
    "profile": profile,
    "train_resume": train_resume,
    "kid": kid,
    "evaluation": evaluation,
}


def _write(result: dict, out: Path) -> None:
    """The JSON so far, atomically (a temp name, then a rename): a run cut short keeps its sections."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(out)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="run every section at tiny sizes on the CPU (no CUDA part)"
    )
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.set_defaults(out=Path("gpu_check.json"))
    args = parser.parse_args()
    chosen = [s for s in args.sections.split(",") if s]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"--sections: unknown {unknown}; choose from {', '.join(SECTIONS)}")
    if args.cpu_smoke:
        device, sizes = torch.device("cpu"), CPU_SMOKE
    elif torch.cuda.is_available():
        device, sizes = torch.device("cuda"), GPU
    else:
        print(
            "gpu_check: no CUDA device is visible; run it on the GPU machine, or pass --cpu-smoke",
            file=sys.stderr,
        )
        raise SystemExit(2)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "benchmark": "gpu_check",
        "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
        "environment": describe_device(device),
        "sections": {},
    }
    started = time.perf_counter()
    for name in chosen:
        if time.perf_counter() - started > sizes.budget_s:
            result["sections"][name] = {"skipped": f"the {sizes.budget_s:.0f} s budget was spent"}
            _write(result, args.out)
            continue
        section_start = time.perf_counter()
        try:
            value = RUNNERS[name](device, sizes)
        except Exception as exc:  # one broken section must not lose the others' figures
            value = {
                "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                "trace": traceback.format_exc()[-3000:],
            }
        value["section_s"] = round(time.perf_counter() - section_start, 2)
        result["sections"][name] = value
        print(f"gpu_check: {name} done in {value['section_s']} s", file=sys.stderr, flush=True)
        _write(result, args.out)
    result["total_s"] = round(time.perf_counter() - started, 2)
    _write(result, args.out)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
