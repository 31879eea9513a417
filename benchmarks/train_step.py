"""ms per iteration, images/s and peak memory of the full DT-GAN iteration (2 D steps, 2 G steps, EMA).

Compares, in one process, the plain fp32 eager step with the platform's speed options
(``train.performance``): ``auto`` (what the platform turns on for this device by default: everything
but compile on CUDA; bf16 + channels_last on CPUs with AMX/AVX512-BF16, nothing on other CPUs), ``fast``
(every option forced on), and each option alone (``bf16``, ``channels_last``, ``fused_adam``, ``compile``).
Inputs are random tensors of the configured size, so data loading is not part of the figure. Prints JSON
with each mode's speed-up over plain; the CPU target is ``auto`` >= 3x plain for the tiny step on one core.

A mode may end in ``+lazy_r1``: the same options with lazy R1 (``loss.r1_every``, ``--r1-every``, default 16 as
StyleGAN2); such a mode is timed over whole R1 cycles (one timed call = r1_every iterations). ``--before DIR``
first times the plain step of another checkout's ``platform`` folder (e.g. ``git archive`` of an older commit) in
a child process, between the same process's modes, and adds every mode's speed-up over it.

    OMP_NUM_THREADS=1 python benchmarks/train_step.py --preset tiny --threads 1        # CPU: plain,auto,each option
    python benchmarks/train_step.py --preset paper --batch-sizes 4,32                  # CUDA: plain,auto,fast
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from common import (
    NOT_MEASURED_ON_CPU,
    base_parser,
    describe_device,
    emit,
    peak_rss_mib,
    pick_device,
    time_calls,
)
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

PAPER_ITERATIONS = 100_000
PAPER_HOURS_TARGET = 3.0
SPEEDUP_TARGET = 3.0
BEFORE_SPEEDUP_TARGET = 2.5  # the cpu32 (g) step against the plain step before the per-step-cost work
NUM_DOMAINS = 3  # the embedded benchmark: normal, scratch, spot
NUM_PRODUCTS = 3
FAST_OPTIONS = {"bf16_autocast": True, "channels_last": True, "fused_adam": True}
PLAIN_OPTIONS = {"bf16_autocast": False, "channels_last": False, "fused_adam": False, "compile": False}
# Each option alone on top of the plain path.
SINGLE_OPTIONS = {
    "bf16": "bf16_autocast",
    "channels_last": "channels_last",
    "fused_adam": "fused_adam",
    "compile": "compile",
}


class FlopCount(TorchDispatchMode):
    """Sums torch's per-op FLOP formulas (matmul, conv and their backwards) below autograd.

    torch.utils.flop_counter.FlopCounterMode cannot be used here: its module hooks break R1's
    ``autograd.grad`` with respect to a leaf input.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


LAZY_SUFFIX = "+lazy_r1"


def _config(preset: str, ablation: str, batch_size: int, mode: str, compile_fast: bool, r1_every: int = 16):
    """A mode is a base (plain, auto, fast or one option alone) optionally followed by ``+option`` parts, each
    turned on on top of the base (e.g. ``auto+compile``), and ``+lazy_r1`` last."""
    from dtgan.config.loader import load_config
    from dtgan.config.root import DTGANConfig

    overrides = [f"model.ablation={ablation}", f"train.batch_size={batch_size}"]
    if mode.endswith(LAZY_SUFFIX):
        mode = mode.removesuffix(LAZY_SUFFIX)
        overrides.append(f"loss.r1_every={r1_every}")
    base, *extra = mode.split("+")
    if "distributed" in DTGANConfig.model_fields:  # older checkouts have no performance options
        if base == "auto":
            options = {}
        elif base == "plain":
            options = dict(PLAIN_OPTIONS)
        elif base == "fast":
            options = FAST_OPTIONS | {"compile": compile_fast}
        else:
            options = PLAIN_OPTIONS | {SINGLE_OPTIONS[base]: True}
        options |= {SINGLE_OPTIONS[name]: True for name in extra}
        overrides += [f"train.performance.{k}={str(v).lower()}" for k, v in options.items()]
    return load_config(preset, overrides)


def _known_mode(mode: str) -> bool:
    base, *extra = mode.removesuffix(LAZY_SUFFIX).split("+")
    return base in ("plain", "auto", "fast", *SINGLE_OPTIONS) and all(e in SINGLE_OPTIONS for e in extra)


def resolved_options(config, device: torch.device) -> dict:
    """The options a mode ran with, as the platform resolved them on ``device``."""
    from dtgan.training.performance import Performance

    return vars(Performance.resolve(config.train.performance, device)).copy()


def _random_batch(config, device: torch.device, seed: int, batch_size: int | None = None):
    from dtgan.losses.objectives import Batch

    g = torch.Generator().manual_seed(seed)
    n = batch_size or config.train.batch_size  # a worker's share of the global batch under data parallelism
    side, latent = config.model.img_size, config.model.latent_dim

    def images() -> torch.Tensor:
        return (torch.rand(n, 3, side, side, generator=g) * 2 - 1).to(device)

    def labels(k: int) -> torch.Tensor:
        return torch.randint(0, k, (n,), generator=g).to(device)

    return Batch(
        x_real=images(),
        y_org=labels(NUM_DOMAINS),
        p_org=labels(NUM_PRODUCTS),
        x_ref=images(),
        x_ref2=images(),
        y_trg=labels(NUM_DOMAINS),
        z_trg=torch.randn(n, latent, generator=g).to(device),
        z_trg2=torch.randn(n, latent, generator=g).to(device),
    )


def measure(
    config, device: torch.device, warmup: int, repeats: int, profile: bool, count_flops: bool = False
) -> dict:
    """Time ``train_step`` on one fixed random batch (the networks still learn, so every step is real)."""
    from dtgan.training.environment import Environment
    from dtgan.training.state import build_train_state
    from dtgan.training.steps import train_step

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    state = build_train_state(config, NUM_DOMAINS, NUM_PRODUCTS, Environment(device=device))
    batch = _random_batch(config, device, seed=0)
    cycle = getattr(config.loss, "r1_every", 1)  # a timed call covers whole lazy-R1 cycles

    def iterations() -> None:
        for _ in range(cycle):
            train_step(state, batch, config)

    raw = time_calls(iterations, device, warmup, repeats)
    timing = type(raw)([t / cycle for t in raw.wall_s], [t / cycle for t in raw.cpu_s])
    result = timing.as_dict(per="iteration") | {"iterations_per_timed_call": cycle}
    n = config.train.batch_size
    result["images_per_s"] = round(n / timing.median_wall_s, 2)
    result["images_per_cpu_s"] = round(n / timing.median_cpu_s, 2)
    if device.type == "cuda":
        result["peak_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    else:
        result["peak_rss_mib_process"] = peak_rss_mib()
    if count_flops:  # device-independent: what the step asks of any accelerator
        with FlopCount() as counter:
            train_step(state, batch, config)
        result["gflop_per_iteration"] = round(counter.total / 1e9, 1)
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch_profile(activities=activities) as prof:
            iterations()  # a whole lazy-R1 cycle, as timed
        sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=sort, row_limit=20), file=sys.stderr)
        result["profile_self_cpu_share"] = profile_shares(prof.key_averages())
    return result


# The profiler's op names by what they are: the share of each in a step says where its time goes.
PROFILE_GROUPS = (
    ("convolutions", ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::cudnn_convolution")),
    (
        "compiled kernels",
        ("## Call CompiledFxGraph", "triton_"),
    ),  # inductor's fused norms, activations, casts
    ("linear layers", ("aten::addmm", "aten::mm", "aten::bmm")),
    ("copies and casts", ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::contiguous")),
    ("Adam", ("Optimizer.step", "aten::_fused_adam")),
    ("graph, guard and autograd bookkeeping", ("Compiled", "TorchDynamo", "autograd::", "Torch-Compiled")),
)


def profile_shares(events) -> dict:
    """Self CPU time per group of :data:`PROFILE_GROUPS` (the rest: "other ops"), as shares of the whole."""
    totals: dict[str, float] = {}
    for event in events:
        group = next(
            (g for g, prefixes in PROFILE_GROUPS if event.key.startswith(prefixes)),
            "other ops",
        )
        totals[group] = totals.get(group, 0.0) + event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return {g: round(v / whole, 3) for g, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def _time_before(args, batch_size: int) -> dict:
    """The plain step of the checkout at ``args.before`` (its platform folder), timed by this script in a child
    process with the same sizes and repeats."""
    command = [
        sys.executable,
        __file__,
        "--preset",
        args.preset,
        "--ablation",
        args.ablation,
        "--batch-sizes",
        str(batch_size),
        "--modes",
        "plain",
        "--repeats",
        str(args.repeats),
        "--device",
        args.device,
    ]
    command += ["--threads", str(args.threads)] if args.threads else []
    command += ["--warmup", str(args.warmup)] if args.warmup is not None else []
    env = os.environ | {"DTGAN_PLATFORM": str(Path(args.before).resolve())}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)["runs"][0]["plain"]
    return result | {"platform": str(args.before)}


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="tiny (32 px) or paper (128 px), or any preset")
    parser.add_argument("--ablation", default="g", help="ladder step a..g (default g, the full DT-GAN)")
    parser.add_argument(
        "--batch-sizes", default=None, help="comma list; default: paper 4,32 on CUDA, 1 on CPU"
    )
    parser.add_argument(
        "--modes",
        default=None,
        help="comma list of plain, auto, fast, bf16, channels_last, fused_adam, compile "
        "(default: plain,auto,fast on CUDA; plain,auto,bf16,channels_last,fused_adam on a CPU)",
    )
    parser.add_argument("--no-compile", action="store_true", help="fast path without torch.compile")
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed iterations (default 2; 15 compiled)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed iterations (the median is reported)")
    parser.add_argument("--profile", action="store_true", help="print the torch.profiler top ops to stderr")
    parser.add_argument("--count-flops", action="store_true", help="also count the FLOPs of one iteration")
    parser.add_argument("--r1-every", type=int, default=16, help="loss.r1_every of the +lazy_r1 modes")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another checkout's platform folder: its plain step is timed first, in a child process",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    modes = (args.modes or ("plain,auto,fast" if cuda else "plain,auto,bf16,channels_last,fused_adam")).split(
        ","
    )
    unknown = [m for m in modes if not _known_mode(m)]
    if unknown:
        parser.error(
            f"--modes: unknown {unknown}; choose from plain, auto, fast, {', '.join(SINGLE_OPTIONS)}, "
            "each optionally followed by +OPTION parts and +lazy_r1"
        )
    default_sizes = ("4,32" if cuda else "1") if args.preset == "paper" else "8"
    sizes = [int(b) for b in (args.batch_sizes or default_sizes).split(",")]
    compile_fast = cuda and not args.no_compile

    runs = []
    for batch_size in sizes:
        row = {"batch_size": batch_size}
        if args.before is not None:
            row["before_plain"] = _time_before(args, batch_size)
        for mode in modes:
            config = _config(
                args.preset, args.ablation, batch_size, mode, compile_fast and mode == "fast", args.r1_every
            )
            options = resolved_options(config, device)
            warmup = args.warmup if args.warmup is not None else (15 if options["compile"] else 2)
            row[mode] = measure(config, device, warmup, args.repeats, args.profile, args.count_flops)
            row[mode]["options"] = options
            gc.collect()
        if "plain" in row:  # CPU time: other load on the machine does not enter the ratio
            clock = "wall" if cuda else "cpu"
            base = row["plain"][f"{clock}_ms_per_iteration_median"]
            for mode in modes:
                if mode != "plain":
                    row[f"{mode}_speedup"] = round(base / row[mode][f"{clock}_ms_per_iteration_median"], 2)
        if "before_plain" in row:
            clock = "wall" if cuda else "cpu"
            base = row["before_plain"][f"{clock}_ms_per_iteration_median"]
            for mode in modes:
                row[f"{mode}_over_before_plain"] = round(
                    base / row[mode][f"{clock}_ms_per_iteration_median"], 2
                )
        runs.append(row)

    targets = {}
    if args.preset == "paper" and cuda:
        best = (
            min(
                r.get("fast", r["plain"])["wall_ms_per_iteration_median"]
                for r in runs
                if r["batch_size"] == 4
            )
            if any(r["batch_size"] == 4 for r in runs)
            else None
        )
        if best is not None:
            hours = best / 1000 * PAPER_ITERATIONS / 3600
            targets["paper_100k_iterations_hours"] = {
                "value": round(hours, 2),
                "target": PAPER_HOURS_TARGET,
                "met": hours <= PAPER_HOURS_TARGET,
            }
        speedups = [r["fast_speedup"] for r in runs if "fast_speedup" in r]
        if speedups:
            targets["fast_over_plain"] = {
                "value": min(speedups),
                "target": SPEEDUP_TARGET,
                "met": min(speedups) >= SPEEDUP_TARGET,
            }
    elif not cuda:
        targets["paper_100k_iterations_hours"] = NOT_MEASURED_ON_CPU
        speedups = [r["auto_speedup"] for r in runs if "auto_speedup" in r]
        if speedups and args.preset != "paper":
            targets["cpu_auto_over_plain"] = {
                "value": min(speedups),
                "target": SPEEDUP_TARGET,
                "met": min(speedups) >= SPEEDUP_TARGET,
                "threads": torch.get_num_threads(),
                "note": "CPU-time ratio of the tiny step, 'auto' options vs plain fp32 eager, same process",
            }
        over_before = {
            (r["batch_size"], m): r[f"{m}_over_before_plain"]
            for r in runs
            for m in modes
            if f"{m}_over_before_plain" in r
        }
        if over_before:
            (batch, best), value = max(over_before.items(), key=lambda item: item[1])
            targets["cpu_best_over_before_plain"] = {
                "value": value,
                "mode": best,
                "batch_size": batch,
                "target": BEFORE_SPEEDUP_TARGET,
                "met": value >= BEFORE_SPEEDUP_TARGET,
                "note": "CPU-time ratio: the fastest mode vs the --before checkout's plain step (child process)",
            }
    if args.preset == "paper" and not cuda:
        plain_b = {r["batch_size"]: r["plain"]["wall_ms_per_iteration_median"] for r in runs if "plain" in r}
        targets["cpu_note"] = (
            f"CPU projection only, not a target: 100k plain iterations at batch "
            f"{min(plain_b)} would take {min(plain_b.values()) / 1000 * PAPER_ITERATIONS / 3600:.0f} h here"
        )
    emit(
        {
            "benchmark": "train_step",
            "preset": args.preset,
            "ablation": args.ablation,
            "environment": describe_device(device),
            "runs": runs,
            "targets": targets,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
