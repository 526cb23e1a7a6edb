"""classifier.fair_pool: borrowers are served in the order they asked."""

from __future__ import annotations

import threading
import time

from classifier.fair_pool import FairPool


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_waiting_borrowers_are_served_first_come_first_served():
    pool = FairPool(["interpreter"])
    served = []

    def borrower(number):
        with pool.borrowed() as item:
            served.append((number, item))

    threads = []
    with pool.borrowed():
        for number in range(6):  # each queues behind the previous one
            thread = threading.Thread(target=borrower, args=(number,))
            thread.start()
            threads.append(thread)
            wait_for(lambda n=number: pool.waiting() == n + 1)
    for thread in threads:
        thread.join(5)
    assert served == [(number, "interpreter") for number in range(6)]


def test_the_one_giving_back_cannot_jump_the_queue():
    """A thread that gives an item back and asks again at once waits behind those
    already waiting (with a plain queue it usually took the item straight back)."""
    pool = FairPool([1])
    order = []
    holding, may_return = threading.Event(), threading.Event()

    def greedy():
        with pool.borrowed():
            holding.set()
            may_return.wait(5)
        with pool.borrowed():
            order.append("greedy again")

    def patient():
        with pool.borrowed():
            order.append("patient")

    first = threading.Thread(target=greedy)
    first.start()
    holding.wait(5)
    second = threading.Thread(target=patient)
    second.start()
    wait_for(lambda: pool.waiting() == 1)
    may_return.set()
    first.join(5)
    second.join(5)
    assert order == ["patient", "greedy again"]


def test_free_items_are_lent_without_waiting():
    pool = FairPool(["a", "b"])
    with pool.borrowed() as first, pool.borrowed() as second:
        assert {first, second} == {"a", "b"} and pool.waiting() == 0
    with pool.borrowed() as again:
        assert again in ("a", "b")
