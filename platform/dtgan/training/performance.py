"""Speed options of the training step: bf16 autocast, channels_last, fused Adam, torch.compile.

Each option is resolved once against the run's device. "auto" turns on what pays there: fused Adam everywhere
(on one CPU core the six Adam steps of a cpu32 iteration take 5.5 ms fused against 18 ms in the per-tensor loop,
~2.5 % of the compiled step; the same update rule, other rounding); on CUDA
bf16 autocast from compute capability 8.0 (emulated, hence slow, before) and channels_last for D and E only (G
and M normalise with InstanceNorm, whose output is NCHW: around it channels_last costs transposes; not yet
measured on a GPU, see benchmarks/gpu_check.py); on a CPU, bf16 autocast only where the CPU computes bf16
natively (AMX tiles or AVX512-BF16), and channels_last (all four networks) only with AMX tiles. Measured with benchmarks/train_step.py (cpu32, step g, batch 8, one
thread, CPU-time ratios): on an AVX512-BF16 EPYC without AMX, bf16 autocast 1.52x, channels_last 0.89x in fp32
and 0.85x on top of bf16, fused Adam 1.11x (noise level); on an AMX Xeon, bf16 1.27x, channels_last 0.98x in
fp32 but bf16 + channels_last ("auto" there) 1.35x; without bf16 instructions bf16 is emulated: on an AVX2 EPYC a
64->64 3x3 convolution ran 15x slower in bf16 than in fp32, so "auto" keeps such CPUs on plain fp32. R1 and the
EMA stay in fp32:
the discriminator's pass on real images runs outside autocast (see ``losses.objectives``) and the EMA update
runs after the step, outside any autocast region.

``compile`` (off by default, opt-in everywhere: its warm-up takes minutes) compiles G block by block, M, E and,
with lazy R1, D between R1 steps, with static shapes (``dynamic=False``) and ``compile_mode`` (``reduce-overhead``
replays CUDA graphs). A compiled step computes what the eager one does: the same random numbers (inductor's
``fallback_random``) and the same losses and weights within float tolerance (tests/unit/test_training_compiled_step.py).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import torch
from torch import nn

from dtgan.config.performance import PerformanceConfig, Switch

# Networks whose forward we may compile; D is differentiated twice by R1 (autograd.grad with
# create_graph), which compiled graphs do not support: D is compiled only with lazy R1 (loss.r1_every > 1),
# and its R1 passes run the eager module.
COMPILED_NETS = ("generator", "mapping_network", "style_encoder")


@functools.cache
def cpu_has_amx() -> bool:
    """This CPU has AMX tiles (oneDNN's bf16 convolutions then prefer NHWC, i.e. channels_last)."""
    return bool(getattr(getattr(torch, "cpu", None), "_is_amx_tile_supported", lambda: False)())


@functools.cache
def cpu_has_native_bf16() -> bool:
    """This CPU multiplies bf16 in hardware (AMX tiles or AVX512-BF16), as oneDNN's bf16 kernels need to pay."""
    cpu = getattr(torch, "cpu", None)
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # private but stable since torch 2.3
    return any(bool(getattr(cpu, name, lambda: False)()) for name in probes)


def cuda_has_native_bf16(device: torch.device) -> bool:
    """This GPU multiplies bf16 in hardware: compute capability 8.0 (Ampere) or later; before, torch emulates it."""
    return torch.cuda.get_device_capability(device) >= (8, 0)


ALL_NETS = ("generator", "mapping_network", "style_encoder", "discriminator")
# channels_last pays where convolutions follow convolutions. G and M normalise with InstanceNorm, whose kernels
# return NCHW, so on CUDA each norm would add two full transposes; D and E have no norm layer.
CUDA_CHANNELS_LAST_NETS = ("style_encoder", "discriminator")


def _on(switch: Switch, device: torch.device, on_cpu: bool = False, on_cuda: bool = True) -> bool:
    """An explicit switch as given; "auto" = on CUDA when ``on_cuda``, on the CPU when ``on_cpu`` (it pays)."""
    if switch != "auto":
        return bool(switch)
    return (device.type == "cuda" and on_cuda) or (device.type == "cpu" and on_cpu)


def _channels_last_nets(switch: Switch, device: torch.device) -> tuple[str, ...]:
    """The networks kept in channels_last: all (true), none (false); "auto": D and E on CUDA, all four on a CPU
    with AMX tiles (oneDNN's bf16 kernels want NHWC there), none on other CPUs."""
    if switch != "auto":
        return ALL_NETS if switch else ()
    if device.type == "cuda":
        return CUDA_CHANNELS_LAST_NETS
    return ALL_NETS if device.type == "cpu" and cpu_has_amx() else ()


@dataclass(frozen=True)
class Performance:
    """The resolved options of one run on one device; ``channels_last`` names the networks it applies to."""

    bf16_autocast: bool = False
    channels_last: tuple[str, ...] = ()
    fused_adam: bool = False
    compile: bool = False
    compile_mode: str = "default"

    @classmethod
    def resolve(cls, cfg: PerformanceConfig, device: torch.device) -> Performance:
        native_bf16 = device.type == "cpu" and cpu_has_native_bf16()
        return cls(
            bf16_autocast=_on(
                cfg.bf16_autocast,
                device,
                on_cpu=native_bf16,
                on_cuda=device.type == "cuda" and cuda_has_native_bf16(device),
            ),
            channels_last=_channels_last_nets(cfg.channels_last, device),
            fused_adam=_on(cfg.fused_adam, device, on_cpu=True),
            compile=cfg.compile,
            compile_mode=cfg.compile_mode,
        )


def autocast(enabled: bool, device: torch.device):
    """bf16 autocast on ``device`` when enabled, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# Each compiled block meets a few static shapes per step (N rows, 3N for the batched mixes, with and without
# gradients, per dtype): more than dynamo's default of 8 graphs per code object, after which it would run the
# block eagerly without a word.
RECOMPILE_LIMIT = 64


def _compile_options(perf: Performance) -> dict:
    """torch.compile's arguments, and the process-wide settings a compiled step needs to equal the eager one:
    the same random numbers (inductor's own generator would draw other noise than eager's, so a compiled run
    would neither repeat an eager run nor resume one exactly) and room for each block's static shapes."""
    import torch._dynamo.config
    import torch._inductor.config

    torch._inductor.config.fallback_random = True
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    return {
        "mode": perf.compile_mode,
        "dynamic": False,
    }  # static shapes: no symbolic sizes, CUDA graphs may replay


def _compile_blocks(module: nn.Module, options: dict) -> None:
    """Compile in place each child (each element of a ModuleList), so that the G step's direct calls of
    ``generator.encode/decode`` run compiled blocks; parameter names and state_dicts are unchanged."""
    for child in module.children():
        for block in child if isinstance(child, nn.ModuleList) else [child]:
            block.compile(**options)


def apply_performance(name: str, module: nn.Module, perf: Performance, lazy_r1: bool = False) -> nn.Module:
    """The network ``name`` (already on its device) in channels_last and/or compiled, as ``perf`` says.

    With lazy R1 (``lazy_r1``) D is compiled too, as a ``torch.compile`` wrapper: the R1 steps differentiate
    its eager module (``losses.objectives.eager_module``), every other pass runs compiled.
    """
    if name in perf.channels_last:
        module = module.to(memory_format=torch.channels_last)
    if perf.compile and name in COMPILED_NETS:
        if name == "generator":
            _compile_blocks(module, _compile_options(perf))
        else:
            module.compile(**_compile_options(perf))
    elif perf.compile and lazy_r1 and name == "discriminator":
        module = torch.compile(module, **_compile_options(perf))
    return module
