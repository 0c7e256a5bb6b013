"""`collector.held`: the cycle collector is off inside, back as it was after, also when batches overlap."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.common import collector


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


def test_off_inside_and_on_again_after_even_on_error() -> None:
    gc.enable()
    with collector.held():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector.held():
        raise RuntimeError("batch failed")
    assert gc.isenabled()


def test_overlapping_batches_keep_it_off_till_the_last_ends() -> None:
    gc.enable()
    first, second = collector.held(), collector.held()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first ends while the second still runs (green threads)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    with collector.held():
        pass
    assert not gc.isenabled()
