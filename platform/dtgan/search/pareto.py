"""Pareto front of a two-objective search: the trials no other trial dominates."""

from __future__ import annotations

from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float], modes: Sequence[str]) -> bool:
    """``a`` is at least as good as ``b`` in every objective and strictly better in one."""
    better_or_equal = all((x <= y) if m == "min" else (x >= y) for x, y, m in zip(a, b, modes))
    strictly = any((x < y) if m == "min" else (x > y) for x, y, m in zip(a, b, modes))
    return better_or_equal and strictly


def pareto_front(points: dict[str, Sequence[float]], modes: Sequence[str]) -> list[str]:
    """Ids of the non-dominated points, sorted by the first objective (best first).

    Args:
        points: trial id -> objective values (same order as ``modes``); trials without values are left out
            by the caller (e.g. stopped or failed trials).
        modes: ``"min"`` or ``"max"`` per objective.
    """
    front = [
        i for i, v in points.items() if not any(dominates(w, v, modes) for j, w in points.items() if j != i)
    ]
    sign = 1.0 if modes[0] == "min" else -1.0
    return sorted(front, key=lambda i: sign * points[i][0])
