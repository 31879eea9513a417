"""The CPU presets' rendered data sets, by name: the training set and the held-out set its downstream study is
tested on (val + test rendered apart from the training data, with another seed), and the `dtgan data synth`
arguments that render each. `make cpu-data` renders the embedded benchmark's; the second set (products and
defects the renderer was not tuned on, docs/results.md) is rendered on first use."""

from __future__ import annotations

from dataclasses import dataclass

_SECOND = ["--products", "knurled,coated,grained", "--defects", "crack,dent"]


@dataclass(frozen=True)
class CpuDataSet:
    training: str
    training_synth: list[str]
    held_out: str
    held_out_synth: list[str]

    def renders(self) -> list[tuple[str, list[str]]]:
        """(path, `dtgan data synth` arguments) of the training and the held-out set."""
        return [(self.training, self.training_synth), (self.held_out, self.held_out_synth)]


DATA_SETS = {
    "benchmark": CpuDataSet(
        "data/cpu/benchmark.parquet",
        ["--scale", "0.5", "--defect-boldness", "2"],
        "data/cpu/heldout.parquet",
        ["--scale", "0.05", "--seed", "1", "--held-out-per-cell", "300", "--defect-boldness", "2"],
    ),
    "second": CpuDataSet(
        "data/cpu2/benchmark.parquet",
        ["--scale", "0.5", "--defect-boldness", "2", *_SECOND],
        "data/cpu2/heldout.parquet",
        ["--scale", "0.05", "--seed", "1", "--held-out-per-cell", "300", "--defect-boldness", "2", *_SECOND],
    ),
}
