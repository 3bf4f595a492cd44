"""The memory backend's windows against a model that keeps every slot and sorts them all
on every question: the waits must agree however anchors move and budgets are given back."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bingx_assets import Rate
from bingx_assets._limiter import BOUNDARY, Blocked, GateClosed, MemoryBackend, Permit, Scope


class StepClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return 1_767_225_600_000 + round(self.now * 1000)


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """MemoryBackend never awaits anything: drive its coroutines without a loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the memory backend suspended")


WINDOW = Rate(3, 1.0)
BUDGET = Rate(2, 5.0)


def scope(errors_limit: int | None = None) -> Scope:
    errors = None if errors_limit is None else ("errors:u", Rate(errors_limit, BUDGET.period))
    return Scope(uid="u", ip="local", gates=(), windows=(("uid:u", WINDOW),), errors=errors)


def wait_of(backend: MemoryBackend, checked: Scope) -> float:
    """Seconds the scope must wait (it must be full: a request admitted takes a slot)."""
    outcome = run(backend.try_acquire(checked, 0.0, 0.0))
    assert isinstance(outcome, Blocked)
    return float(outcome.seconds)


def admitted(backend: MemoryBackend, checked: Scope, in_flight: float = 5.0) -> Permit:
    outcome = run(backend.try_acquire(checked, in_flight, in_flight + 5.0))
    assert not isinstance(outcome, Blocked | GateClosed)
    return outcome  # type: ignore[no-any-return]


def test_the_kth_youngest_slot_decides_the_wait_after_anchors_move() -> None:
    clock = StepClock()
    backend = MemoryBackend(clock)
    permits: list[Permit] = []
    for sent in (0.0, 0.1, 0.2):  # in flight: anchored at sent + 5, until sent + 10
        clock.now = sent
        permits.append(admitted(backend, scope()))
    first, second, third = permits
    expiry = WINDOW.period + BOUNDARY
    assert wait_of(backend, scope()) == pytest.approx(5.0 + expiry - 0.2, abs=1e-6)
    clock.now = 0.3
    run(third.settle(answered=True))  # now the oldest: anchored at its answer
    assert wait_of(backend, scope()) == pytest.approx(0.3 + expiry - 0.3, abs=1e-6)
    clock.now = 0.4
    run(first.settle(answered=False))  # given up on: counts until its horizon
    assert wait_of(backend, scope()) == pytest.approx(0.3 + expiry - 0.4, abs=1e-6)
    clock.now = 1.4  # the answered one has ended: two alive, one admitted
    admitted(backend, scope())
    # Anchors now 5.1 (second), 10 (first), 6.4 (the new one): the oldest decides.
    assert wait_of(backend, scope()) == pytest.approx(5.1 + expiry - 1.4, abs=1e-6)
    run(second.settle(answered=True))
    assert wait_of(backend, scope()) == pytest.approx(1.4 + expiry - 1.4, abs=1e-6)


@dataclass
class ModelSlot:
    anchor: float
    horizon: float
    in_budget: bool
    settled: bool = False


def model_wait(slots: list[ModelSlot], now: float, period: float, limit: int) -> float:
    now += 1e-9
    expiry = period + BOUNDARY
    alive = sorted(s.anchor for s in slots if s.anchor + expiry > now)
    if len(alive) < limit:
        return 0.0
    return alive[len(alive) - limit] + expiry - now


operations = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(0.0, 1.5)),
        st.tuples(st.just("acquire"), st.floats(0.0, 2.0), st.sampled_from([None, 1, 2])),
        st.tuples(
            st.just("settle"), st.integers(0, 30), st.booleans(), st.booleans(), st.booleans()
        ),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_waits_agree_with_a_model_that_sorts_every_slot(ops: list[tuple[Any, ...]]) -> None:
    clock = StepClock()
    backend = MemoryBackend(clock)
    slots: list[tuple[ModelSlot, Permit]] = []
    for op in ops:
        if op[0] == "advance":
            clock.now += op[1]
        elif op[0] == "acquire":
            in_flight, share = op[1], op[2]
            checked = scope(BUDGET.limit if share is None else share)
            model = [m for m, _ in slots]
            expected = max(
                model_wait(model, clock.now, WINDOW.period, WINDOW.limit),
                model_wait([m for m in model if m.in_budget], clock.now, BUDGET.period,
                           checked.errors[1].limit if checked.errors else 0),
            )  # fmt: skip
            outcome = run(backend.try_acquire(checked, in_flight, in_flight + 3.0))
            if expected > 0:
                assert isinstance(outcome, Blocked)
                assert outcome.seconds == pytest.approx(expected, abs=1e-9)
            else:
                assert not isinstance(outcome, Blocked | GateClosed), expected
                slot = ModelSlot(clock.now + in_flight, clock.now + in_flight + 3.0, True)
                slots.append((slot, outcome))
        elif slots:
            model_slot, permit = slots[op[1] % len(slots)]
            answered, succeeded, server_says = op[2], op[3], op[4]
            if model_slot.settled and server_says:
                continue  # a second settle with a server count fills the window: not modelled
            model_slot.settled = True
            if answered:
                model_slot.anchor = min(model_slot.anchor, clock.now)
            else:
                model_slot.anchor = max(model_slot.anchor, model_slot.horizon)
            if succeeded:  # answered, or known since to be no error: given back
                model_slot.in_budget = False
            run(permit.settle(answered=answered, succeeded=succeeded))
