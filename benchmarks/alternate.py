"""Shared by the benchmarks: time two (or more) systems on the same input, alternating which runs first."""

from __future__ import annotations

import threading
from typing import Callable, Mapping

import psutil

from xencoder_lab.timing import Stopwatch


def measure(run: Callable, items):
    """(seconds, peak resident memory above the starting level in MB, output) of ``run(items)``."""
    process = psutil.Process()
    base, peak, done = process.memory_info().rss, [0], threading.Event()

    def sample():
        while not done.wait(0.01):
            peak[0] = max(peak[0], process.memory_info().rss - base)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    watch = Stopwatch()
    output = run(items)
    seconds = watch.seconds
    done.set()
    sampler.join()
    return seconds, max(peak[0], process.memory_info().rss - base) / 2**20, output


def alternate(systems: Mapping[str, Callable], items, rounds: int, unit: str):
    """Run every system on ``items`` once per round, the order reversed every other round, after a warm-up
    on the first 64 items. Returns ``(rates, peak MB, last output)``, each ``{name: ...}``; rates are
    ``unit`` per second, one per round."""
    for run in systems.values():  # warm-up: first calls allocate and pick kernels
        run(items[:64])
    rates = {name: [] for name in systems}
    memory = {name: [] for name in systems}
    outputs = {}
    for r in range(rounds):
        names = list(systems) if r % 2 == 0 else list(systems)[::-1]
        for name in names:
            seconds, mb, outputs[name] = measure(systems[name], items)
            rates[name].append(len(items) / seconds)
            memory[name].append(mb)
            print(f"round {r + 1} {name:22} {len(items) / seconds:7.1f} {unit}/s  peak +{mb:6.0f} MB", flush=True)
    return rates, memory, outputs
