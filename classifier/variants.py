"""Which file of a model to serve, and why: its `Runtime`.

A model directory ships its network in several variants (int8 and float16), because
which is faster depends on the CPU: int8 wins where the CPU has VNNI instructions and
loses on plain AVX2. `choose_variant` serves the one a setting names, or times each
for a moment at load and serves the faster, and says which and why.

Timing costs every start a few hundred milliseconds, and a near tie can flip from one
start to the next (the same photo would get slightly different scores after a
restart), so the first start on a CPU writes its measurements to a small JSON file in
the instance folder (`VariantMemory`) and later starts serve what it chose. An entry
holds only for the same CPU (model name and instruction-set flags), the same LiteRT
version and the same files (size and modification time). Workers starting together
take turns on a file lock, so the first times a model and the others read its verdict.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from classifier.litert import Runner

log = logging.getLogger(__name__)

#: Timed invocations per variant at load, after one warm-up, taken in turns: enough
#: to tell a 10 % difference apart, short enough to keep start-up well under a second.
TIMING_RUNS = 7
#: How much faster a later variant must be to be served instead of the first one
#: (the smallest file, and the least memory: a float16 file costs a worker about twice
#: its int8 twin's memory, as LiteRT unpacks it to float32).
CLEARLY_FASTER = 0.10


@dataclass(frozen=True)
class Runtime:
    """What a model serves and why, as the start-up log and /api/v1/models say it:
    the variant and its file (relative to the model's directory), the reason, the
    start-up timings of each variant (none when nothing was timed), the model whose
    network it shares (`features_of`) and the files its head also reads."""

    variant: str
    file: str
    reason: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    features_of: str | None = None
    extra_features: tuple[str, ...] = ()

    def reading_extras(self, files: list[str]) -> Runtime:
        """The same, with a head that also reads these networks' feature maps."""
        return replace(self, extra_features=tuple(files), reason=(
            f"{self.reason}; its head also reads the feature map of {', '.join(files)}"))

    def as_dict(self) -> dict:
        fields = asdict(self)
        fields["extra_features"] = list(self.extra_features)
        return {key: value for key, value in fields.items()
                if key in ("variant", "file", "reason", "timings_ms") or value}

    @classmethod
    def from_dict(cls, fields: dict) -> Runtime:
        return cls(**{**fields, "extra_features": tuple(fields.get("extra_features", ()))})


def choose_variant(directory: Path, files: dict[str, str], wanted: str,
                   num_threads: int = 1, memory: VariantMemory | None = None
                   ) -> tuple[Runtime, Runner]:
    """Which of a model's files to serve: `wanted` if the directory has it, else the
    fastest, timed here (or remembered in `memory` from an earlier start on this CPU).
    Returns the `Runtime` that the start-up log and /api/v1/models show, and an
    interpreter already loaded with that file."""
    if wanted in files:
        return (Runtime(wanted, files[wanted], f"the {wanted} variant was asked for by a setting"),
                Runner(directory / files[wanted], num_threads))
    if wanted != "auto":
        log.warning("%s has no %s variant (it has %s); choosing by speed instead",
                    directory.name, wanted, ", ".join(files))
    if len(files) == 1:
        (name, file), = files.items()
        return (Runtime(name, file, "the only variant shipped (the model card says why)"),
                Runner(directory / file, num_threads))
    if memory is None:
        return _fastest(directory, files, num_threads)
    with memory.locked():  # workers starting together: one measures, the others read
        runtime = memory.recall(directory, files)
        if runtime is not None:
            return runtime, Runner(directory / runtime.file, num_threads)
        runtime, runner = _fastest(directory, files, num_threads)
        memory.remember(directory, files, runtime)
        return runtime, runner


def _fastest(directory: Path, files: dict[str, str], num_threads: int) -> tuple[Runtime, Runner]:
    """Time every variant here; the runtime description and the chosen interpreter."""
    runners = {name: Runner(directory / file, num_threads) for name, file in files.items()}
    timings = _median_times(runners)
    # The first variant listed (the smallest file, which also takes the least memory)
    # unless another is clearly faster: timings a few per cent apart are noise, and a
    # choice that flips between restarts would make the same photo's scores differ from
    # one run to the next.
    first = chosen = next(iter(timings))
    for name, ms in timings.items():
        if ms < timings[chosen] / (1 + CLEARLY_FASTER):
            chosen = name
    measured = ", ".join(f"{name} {ms:.2f} ms" for name, ms in timings.items())
    verdict = (f"{chosen} is more than {CLEARLY_FASTER:.0%} faster than {first}" if chosen != first
               else f"none is more than {CLEARLY_FASTER:.0%} faster than {first}, the smallest")
    reason = f"on this CPU {measured} (median of one-image runs timed at start-up): {verdict}"
    return Runtime(chosen, files[chosen], reason, timings), runners[chosen]


def _median_times(runners: dict[str, Runner]) -> dict[str, float]:
    """Median milliseconds of one inference per runner, taking turns between them so
    that a change in the machine's speed meanwhile (another worker starting up) hits
    every variant alike."""
    first = next(iter(runners.values()))
    pixels = np.random.default_rng(0).integers(0, 256, (*first.input_size[::-1], first.channels),
                                                np.uint8)
    for runner in runners.values():
        runner.run(pixels)  # the first invoke allocates
    timings = median_ms_in_turns({name: (lambda r=runner: r.run(pixels))
                                  for name, runner in runners.items()}, TIMING_RUNS)
    return {name: round(ms, 3) for name, ms in timings.items()}


def median_ms_in_turns(calls: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median milliseconds of each call, `runs` times each, taking turns so that a drift
    in the machine's speed meanwhile hits every call alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


class VariantMemory:
    """The JSON file of remembered choices, one entry per model directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while a model's choice is looked up and, if missing, measured."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def recall(self, directory: Path, files: dict[str, str]) -> Runtime | None:
        """The choice measured earlier for these files on this CPU, or None."""
        entry = self._entries().get(_key(directory))
        if not isinstance(entry, dict) or entry.get("signature") != signature(directory, files):
            return None
        try:
            runtime, measured = Runtime.from_dict(entry["runtime"]), str(entry["measured"])
        except (KeyError, TypeError):  # written by another version, or damaged: measure again
            return None
        if files.get(runtime.variant) != runtime.file:  # not one of this model's files
            return None
        return replace(runtime, reason=f"remembered from a start-up on {measured} on "
                                       f"this CPU ({self.path.name}): {runtime.reason}")

    def remember(self, directory: Path, files: dict[str, str], runtime: Runtime) -> None:
        entries = self._entries()
        entries[_key(directory)] = {
            "signature": signature(directory, files), "runtime": runtime.as_dict(),
            "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
        draft = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        draft.write_text(json.dumps(entries, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(draft, self.path)  # readers see the old file or the new, never half

    def _entries(self) -> dict:
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # damaged: measure again and rewrite it
            log.warning("ignoring %s (%s)", self.path, exc)
            return {}
        return entries if isinstance(entries, dict) else {}


def signature(directory: Path, files: dict[str, str]) -> str:
    """What a measurement depends on: the CPU, the runtime and the files themselves."""
    parts = [_cpu(), platform.machine(), importlib.metadata.version("ai-edge-litert")]
    for variant, name in sorted(files.items()):
        stat = (directory / name).stat()
        parts.append(f"{variant}={name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _key(directory: Path) -> str:
    return str(directory.resolve())


def _cpu() -> str:
    """The first CPU's model name and flags (which decide int8's speed)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor()
    first = cpuinfo.split("\n\n", 1)[0]
    return "\n".join(line for line in first.splitlines()
                     if line.startswith(("model name", "flags")))
