"""The collector pause around a bulk parse never leaves the collector in another state than it found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mde.gcpause import cyclic_gc_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    before = gc.isenabled()
    yield
    gc.enable() if before else gc.disable()


def test_the_collector_is_off_in_the_block_and_on_after_it() -> None:
    gc.enable()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_in_the_block_still_restores_the_collector() -> None:
    gc.enable()
    with pytest.raises(KeyError), cyclic_gc_paused():
        raise KeyError("id")
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_operator_stays_off() -> None:
    gc.disable()
    with cyclic_gc_paused():
        pass
    assert not gc.isenabled()
