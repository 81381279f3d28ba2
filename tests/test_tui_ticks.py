"""Y ticks of the dashboard's plots: round values inside the data's range, evenly spaced."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from cliffscope.tui.widgets.plots import _tick_label, nice_ticks

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


@given(finite, finite, st.integers(min_value=2, max_value=15))
def test_ticks_are_round_evenly_spaced_and_inside_the_range(a: float, b: float, most: int) -> None:
    lo, hi = min(a, b), max(a, b)
    ticks = nice_ticks(lo, hi, most)
    assert 1 <= len(ticks) <= most
    if hi - lo < 1e-12 or ticks == [lo, hi]:
        return
    tol = 1e-9 * max(1.0, abs(lo), abs(hi))
    assert lo - tol <= ticks[0] and ticks[-1] <= hi + tol
    if len(ticks) > 1:
        step = ticks[1] - ticks[0]
        assert all(
            math.isclose(y - x, step, rel_tol=1e-6) for x, y in zip(ticks, ticks[1:], strict=False)
        )
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5))


def test_the_sweep_scores_of_the_demo_get_readable_ticks() -> None:
    ticks = nice_ticks(0.18, 1.0, 5)
    assert [_tick_label(t, ticks) for t in ticks] == ["0.2", "0.4", "0.6", "0.8", "1.0"]
    quarter = nice_ticks(-0.8, 0.1, 4)
    assert [_tick_label(t, quarter) for t in quarter] == ["-0.75", "-0.50", "-0.25", "0.00"]
    assert _tick_label(0.5, nice_ticks(0.5, 0.5, 4)) == "0.5"
