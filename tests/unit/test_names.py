"""Names that become files and keys: reserved product names, collisions after sanitising, injective file stems,
run names that would leave out_dir."""

from __future__ import annotations

import pytest

from dtgan.config import load_config
from dtgan.errors import ConfigError, DataError
from dtgan.keys import safe_name
from dtgan.names import check_distinct_safe_names, check_product_names, check_run_name, injective_file_stems


def test_a_product_named_like_the_aggregate_or_colliding_after_sanitising_is_refused():
    with pytest.raises(DataError, match="product 'all' is named like the aggregate 'all'"):
        check_product_names(["cast", "all"], "data.parquet")
    with pytest.raises(DataError, match="'a.b' and 'a-b' would share the file and metric name 'a-b'"):
        check_product_names(["a.b", "a-b"], "data.parquet")
    with pytest.raises(DataError, match="defects 'Scratch' and 'scratch'"):
        check_distinct_safe_names(["Scratch", "scratch"], "defect", "--defects")
    check_product_names(["cast", "woven", "all_metal"], "data.parquet")


def test_file_stems_are_injective_and_stable():
    ids = ["a/b", "a_b", "a.b", "a-b", "A-B", "c"]
    stems = injective_file_stems(ids)
    assert len({s.lower() for s in stems}) == len(ids)
    assert stems[0] == safe_name("a/b") and stems[-1] == "c"
    assert stems == injective_file_stems(ids)


@pytest.mark.parametrize("name", ["..", "../x", "/tmp/x", "a/b", "a\\\\b", ".", "", "C:x"])
def test_run_names_that_leave_out_dir_are_refused(name):
    with pytest.raises(ValueError, match="is not a folder name"):
        check_run_name(name)
    with pytest.raises(ConfigError, match="train.run_name"):
        load_config(None, [f"train.run_name={name!r}"] if name else ["train.run_name=''"])


def test_ordinary_run_names_pass():
    for name in ("smoke-g-seed777", "trial-3", "run.v2", "a..b"):
        assert check_run_name(name) == name
