"""Optimal one-to-one assignment (Hungarian / Kuhn-Munkres) for the handful of people in a frame."""
from __future__ import annotations

import numpy as np


def assign(cost: np.ndarray, max_cost: float) -> list[tuple[int, int]]:
    """Row-column pairs of least total cost; pairs costing more than `max_cost` are left unmatched.

    Example:
        >>> assign(np.array([[0.1, 0.9], [0.2, 0.3]]), 0.5)
        [(0, 0), (1, 1)]
    """
    cost = np.asarray(cost, np.float64)
    if cost.size == 0:
        return []
    rows, cols = cost.shape
    n = max(rows, cols)
    big = max_cost + 1.0 + float(np.abs(cost).max())
    square = np.full((n, n), big)
    square[:rows, :cols] = np.minimum(cost, big)
    matched = _hungarian(square)
    return [(r, c) for r, c in enumerate(matched) if r < rows and c < cols and cost[r, c] <= max_cost]


def _hungarian(a: np.ndarray) -> list[int]:
    """Column of each row in a minimum-cost perfect matching of a square matrix (O(n^3), potentials form)."""
    n = a.shape[0]
    u, v = np.zeros(n + 1), np.zeros(n + 1)
    match = np.zeros(n + 1, int)  # match[column] = row, 1-based; 0 = free
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        minv, used, way = np.full(n + 1, np.inf), np.zeros(n + 1, bool), np.zeros(n + 1, int)
        while True:
            used[j0] = True
            i0 = match[j0]
            free = ~used[1:]
            cur = a[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            j1 = int(np.argmin(np.where(free, minv[1:], np.inf))) + 1
            delta = minv[j1]
            u[match[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    rows = [0] * n
    for j in range(1, n + 1):
        rows[match[j] - 1] = j - 1
    return rows
