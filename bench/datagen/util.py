"""Small helpers shared by the generator modules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split total into integers proportional to weights (largest remainder, stable)."""
    s = sum(weights)
    if total <= 0 or s <= 0:
        return [0] * len(weights)
    raw = [total * w / s for w in weights]
    out = [int(x) for x in raw]
    rest = total - sum(out)
    order = sorted(range(len(raw)), key=lambda i: (out[i] - raw[i], i))
    for i in order[:rest]:
        out[i] += 1
    return out


def apportion_bounded(
    total: int, weights: Sequence[float], lo: Sequence[int], hi: Sequence[int]
) -> list[int]:
    """Like apportion, with lo[i] <= out[i] <= hi[i]; ValueError if impossible."""
    if sum(lo) > total or sum(hi) < total:
        raise ValueError(f"cannot split {total} within bounds {sum(lo)}..{sum(hi)}")
    out = list(lo)
    while (rest := total - sum(out)) > 0:
        open_ = [i for i in range(len(out)) if out[i] < hi[i]]
        share = apportion(rest, [weights[i] or 1e-9 for i in open_])
        for i, k in zip(open_, share, strict=True):
            out[i] = min(hi[i], out[i] + k)
    return out


def expand(pairs: Iterable[tuple[str, int]], size: int) -> list[str]:
    """A lookup table of exactly size entries where each value appears about weight-often."""
    pairs = list(pairs)
    counts = apportion(size, [w for _, w in pairs])
    table = [v for (v, _), k in zip(pairs, counts, strict=True) for _ in range(k)]
    return table
