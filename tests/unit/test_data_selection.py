"""Round-robin selection keeps every product in a grid or an evaluation subset."""

import torch

from dtgan.data.selection import round_robin


def test_round_robin_alternates_products_in_row_order():
    products = torch.tensor([0, 0, 0, 1, 2, 2])
    assert round_robin(products, 5).tolist() == [0, 3, 4, 1, 5]


def test_round_robin_stops_when_rows_run_out():
    assert round_robin(torch.tensor([1, 1]), 5).tolist() == [0, 1]
    assert round_robin(torch.tensor([], dtype=torch.long), 3).tolist() == []
