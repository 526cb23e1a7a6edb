"""Helpers shared by the benchmarks: timing, percentiles, writing results."""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def timed(call: Callable[[int], object], repeats: int, warmup: int = 5) -> list[float]:
    """Wall time in ms of `call(i)` for i in range(repeats), after a few warm-up calls."""
    for i in range(warmup):
        call(i)
    samples = []
    for i in range(repeats):
        start = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def percentile(sorted_samples: list[float], q: float) -> float:
    index = min(len(sorted_samples) - 1, max(0, round(q * (len(sorted_samples) - 1))))
    return sorted_samples[index]


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"n": len(ordered), **{f"p{int(q * 100)}_ms": round(percentile(ordered, q), 3)
                                  for q in (0.5, 0.9, 0.99)}}


def machine() -> str:
    from classifier.settings import machine_description

    return f"{machine_description()}, Python {platform.python_version()}"


def report(name: str, result: dict, to_markdown: Callable[[dict], str]) -> str:
    """Write bench/results/NAME.json and NAME.md; print the table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "machine": machine(),
              "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), **result}
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    # Every table names the machine and the day: figures only mean something next to them.
    text = (f"### {name}\n\nMachine: {result['machine']}; measured {result['measured_at']}\n\n"
            f"{to_markdown(result)}\n")
    (RESULTS / f"{name}.md").write_text(text)
    print(text)
    return text
