"""Wall-clock timing for the durations the course reports: a stage of a search, one call of many, a whole run.

``Stopwatch`` reads the seconds since it was made (``time.perf_counter``); ``time_calls`` times a function on each
of its inputs alone, after a warm-up, as a user meets it: the latency of one request, not a batch's throughput.

>>> watch = Stopwatch()
>>> total = sum(range(1000))
>>> 0 <= watch.seconds < 1
True
"""

from __future__ import annotations

import itertools
import time
from typing import Callable, Iterable, Iterator, TypeVar

Input, Output = TypeVar("Input"), TypeVar("Output")


class Stopwatch:
    """Started when made; ``seconds`` reads the wall-clock time since then."""

    def __init__(self):
        self._start = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Seconds since the stopwatch was made."""
        return time.perf_counter() - self._start


def time_calls(fn: Callable[[Input], Output], inputs: Iterable[Input], warmup: int = 1
               ) -> Iterator[tuple[Output, float]]:
    """``(fn(x), seconds)`` for each of ``inputs`` in turn, each call timed alone, after ``warmup`` unmeasured
    calls on the first inputs (first calls allocate and pick kernels; from the first again if there are fewer).

    Args:
        fn: the function timed, called with one input at a time.
        inputs: at least one input.
        warmup: how many calls to make, untimed, before the first timed one.

    Yields:
        ``(output, seconds)`` for each input, in order; an output is not kept once the caller moves on.

    >>> [(output, 0 <= seconds < 1) for output, seconds in time_calls(len, ["ab", "c"])]
    [(2, True), (1, True)]
    """
    inputs = list(inputs)
    if not inputs:
        raise ValueError("no inputs to time: give at least one.")
    for x in itertools.islice(itertools.cycle(inputs), warmup):
        fn(x)
    for x in inputs:
        watch = Stopwatch()
        output = fn(x)
        yield output, watch.seconds
