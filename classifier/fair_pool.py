"""A pool that lends its items in the order they were asked for.

A worker's threads share one interpreter per model (one per core). With a plain
queue or lock, the thread that just gave the interpreter back often takes it again
for its next request before the threads already waiting wake up, so under load a few
requests wait for seconds while others are served: on 2 cores at 16 connections the
99th percentile was 1.9-2.7 s against a median of 0.22 s (bench/http_load.py). Here a
returned item goes straight to the longest waiter.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

Item = TypeVar("Item")


class FairPool(Generic[Item]):
    def __init__(self, items: Iterable[Item]):
        self._free: deque[Item] = deque(items)
        self._waiting: deque[_Turn[Item]] = deque()
        self._lock = threading.Lock()

    @contextmanager
    def borrowed(self) -> Iterator[Item]:
        item = self._take()
        try:
            yield item
        finally:
            self._give_back(item)

    def waiting(self) -> int:
        """Borrowers waiting for an item."""
        with self._lock:
            return len(self._waiting)

    def _take(self) -> Item:
        with self._lock:
            if self._free:  # none waits while an item is free
                return self._free.popleft()
            turn: _Turn[Item] = _Turn()
            self._waiting.append(turn)
        turn.handed.wait()
        return turn.item

    def _give_back(self, item: Item) -> None:
        with self._lock:
            if not self._waiting:
                self._free.append(item)
                return
            turn = self._waiting.popleft()
        turn.item = item
        turn.handed.set()


class _Turn(Generic[Item]):
    """One waiting borrower, and the item handed to it."""

    def __init__(self):
        self.handed = threading.Event()
        self.item: Item
