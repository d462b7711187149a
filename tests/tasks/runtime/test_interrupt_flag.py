"""A Ctrl-C is remembered: a KeyboardInterrupt swallowed by library code still stops the next unit of work."""

from __future__ import annotations

import contextlib
import signal

import pytest

from tasks.instruct.generators import TemplateGenerator
from tasks.instruct.stage import instruct_samples
from tasks.runtime import interrupt
from tasks.runtime.stage_clock import StageClock


@pytest.fixture(autouse=True)
def _clean():
    interrupt.reset()
    before = signal.getsignal(signal.SIGINT)
    yield
    interrupt.reset()
    signal.signal(signal.SIGINT, before)


def _swallowed_ctrl_c() -> None:
    """A SIGINT that reaches the handler and whose KeyboardInterrupt some library catches and drops."""
    interrupt.install()
    with contextlib.suppress(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_nothing_happened_nothing_raised():
    interrupt.check()


def test_a_swallowed_ctrl_c_stops_the_instruct_stage_at_the_next_key():
    rows = [(f"oakink-{i:016x}", "oakink", "mug", affordance, None)
            for i, affordance in enumerate(["wrap-grasp", "handle-grasp"])]
    assert len(instruct_samples(rows, TemplateGenerator(), None)[0]) == 2
    _swallowed_ctrl_c()
    with pytest.raises(KeyboardInterrupt):
        instruct_samples(rows, TemplateGenerator(), None)


def test_a_swallowed_ctrl_c_stops_the_run_before_the_next_stage(tmp_path):
    clock = StageClock(tmp_path)
    _swallowed_ctrl_c()
    with pytest.raises(KeyboardInterrupt):
        clock.start("instruct")
