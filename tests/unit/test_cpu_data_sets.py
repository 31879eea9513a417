"""The CPU presets' data sets (experiments/_cpu_data.py): the Makefile renders the embedded benchmark's with the
same arguments, the second set's held-out set is the benchmark's recipe on the second set's products and defects,
and confirm_search's --data-set points training, the downstream study and its held-out set at one set."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import pytest
from script_module import load_script

from dtgan.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments"))

from _cpu_data import DATA_SETS  # noqa: E402


def _confirm_search():
    return load_script("experiments/confirm_search.py")


def test_the_makefile_renders_the_benchmark_sets_with_the_same_arguments():
    makefile = (REPO / "Makefile").read_text()
    rendered = {}
    for line in makefile.splitlines():
        found = re.search(r"dtgan data synth --out (\S+) (.*)$", line)
        if found:
            rendered[found.group(1)] = shlex.split(found.group(2))
    for path, synth in DATA_SETS["benchmark"].renders():
        assert rendered[path] == synth, path


def test_the_second_held_out_set_is_the_benchmark_recipe_on_the_second_products():
    benchmark, second = DATA_SETS["benchmark"], DATA_SETS["second"]
    products = second.training_synth[second.training_synth.index("--products") :]
    assert second.held_out_synth == benchmark.held_out_synth + products
    assert second.training_synth == benchmark.training_synth + products
    assert "--seed" in second.held_out_synth and "--seed" not in second.training_synth  # rendered apart
    assert len({s.training for s in DATA_SETS.values()} | {s.held_out for s in DATA_SETS.values()}) == 4


@pytest.mark.parametrize("data_set", [None, "second"])
def test_confirm_search_points_every_run_at_the_chosen_data_set(data_set):
    confirm = _confirm_search()
    args = argparse.Namespace(data_set=data_set, downstream_override=["downstream.num_seeds=3"])
    training = load_config("cpu32", confirm._data_overrides(args))
    downstream = load_config("downstream_cpu_power", confirm._downstream_overrides(args)).downstream
    assert downstream.num_seeds == 3  # the user's overrides still apply, after the data set's
    if data_set is None:
        assert confirm._data_overrides(args) == []
        assert training.data.path == load_config("cpu32").data.path
        assert downstream.held_out_data == load_config("downstream_cpu_power").downstream.held_out_data
    else:
        assert training.data.path == DATA_SETS[data_set].training
        assert downstream.held_out_data == DATA_SETS[data_set].held_out
