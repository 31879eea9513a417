"""Shared helpers of the benchmark scripts: import path, device description, repeat-median timing, JSON output."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform as host_platform  # the stdlib module; the repo's platform/ is a source root, not a package
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This checkout's dtgan, ahead of any installed copy; DTGAN_PLATFORM=<another checkout>/platform benchmarks
# that code instead (e.g. an older commit, for before/after figures).
PLATFORM_DIR = os.environ.get("DTGAN_PLATFORM", str(ROOT / "platform"))
sys.path.insert(0, PLATFORM_DIR)

import torch  # noqa: E402

NOT_MEASURED_ON_CPU = "not measured here: no CUDA device in this process (the target is for one H100)"


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto = cuda when available (default)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice, i.e. the cores it sees)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")
    return parser


def pick_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to this process")
    return torch.device(choice)


def describe_device(device: torch.device) -> dict:
    """What the numbers were measured on: device name, host, threads, library versions, date."""
    info = {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else host_platform.processor() or host_platform.machine(),
        "host": host_platform.node(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "python": host_platform.python_version(),
        "dtgan_source": PLATFORM_DIR,
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
    }
    if device.type == "cpu":
        info["cpu_model"] = _cpu_model()
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()  # e.g. AVX2, AVX512
        cpu = getattr(torch, "cpu", None)
        for flag in ("amx_tile", "avx512_bf16"):  # what bf16 needs to pay on a CPU
            probe = getattr(cpu, f"_is_{flag}_supported", None)
            info[f"cpu_{flag}"] = bool(probe()) if probe else None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return host_platform.processor() or "unknown"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Timing:
    """Per-call wall and CPU (process) seconds over ``repeats`` calls after ``warmup`` calls."""

    wall_s: list[float]
    cpu_s: list[float]

    @property
    def median_wall_s(self) -> float:
        return statistics.median(self.wall_s)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpu_s)

    def as_dict(self, per: str = "call") -> dict:
        return {
            f"wall_ms_per_{per}_median": round(1000 * self.median_wall_s, 2),
            f"wall_ms_per_{per}_min": round(1000 * min(self.wall_s), 2),
            f"cpu_ms_per_{per}_median": round(1000 * self.median_cpu_s, 2),
            "repeats": len(self.wall_s),
        }


def time_calls(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> Timing:
    """Median-able timings of ``fn``; CPU time is the process's (all threads), wall time includes the sync."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    wall, cpu = [], []
    for _ in range(repeats):
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        fn()
        synchronize(device)
        wall.append(time.perf_counter() - t_wall)
        cpu.append(time.process_time() - t_cpu)
    return Timing(wall, cpu)


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (Linux ru_maxrss is in KiB); it never goes down."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def emit(result: dict, out: Path | None) -> None:
    """Print the result as JSON on stdout (and write it to ``out``)."""
    text = json.dumps(result, indent=2, sort_keys=False)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
