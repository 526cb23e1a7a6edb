"""Which variant of each model was fastest on this CPU, remembered between starts.

Timing a model's variants at start-up is the only way to know which is faster on the
CPU at hand, but it costs every start a few hundred milliseconds (the pizza model's
two EfficientNet-Lite0 files, seven runs each), and a near tie can flip from one
start to the next, so the same photo would get slightly different scores after a
restart. The first start on a CPU therefore writes its measurements to a small JSON
file (in the instance folder); later starts serve what it chose. An entry holds only
for the same CPU (model name and instruction-set flags), the same LiteRT version and
the same files (size and modification time): a new machine, a new runtime or a
retrained model is timed again.

Workers starting together take turns on a file lock, so the first times a model and
the others read its verdict: every worker serves the same variant.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


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

    def recall(self, directory: Path, files: dict[str, str]) -> dict | None:
        """The runtime description measured earlier for these files on this CPU, or None."""
        entry = self._entries().get(_key(directory))
        if not entry or entry.get("signature") != signature(directory, files):
            return None
        runtime = dict(entry["runtime"])
        runtime["reason"] = (f"remembered from a start-up on {entry['measured']} on this CPU "
                             f"({self.path.name}): {runtime['reason']}")
        return runtime

    def remember(self, directory: Path, files: dict[str, str], runtime: dict) -> None:
        entries = self._entries()
        entries[_key(directory)] = {
            "signature": signature(directory, files), "runtime": runtime,
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
