"""The fetcher's pacing: no new work while the event loop is late, as under `parley serve` (gevent).

Run in a gevent-patched interpreter of its own, as the server is: a greenlet that computes without
yielding makes every other greenlet (a webhook ack, the lag timer) wait, which is what is measured.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import threading, time, gevent
    from parley.worker.pacing import LoopLag

    lag = LoopLag(limit=0.05)
    lag.start()
    gevent.sleep(0.1)
    print("idle", lag.lag < 0.05)

    def compute(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    compute(0.3)          # a worker hogging the loop for 300 ms
    gevent.sleep(0)       # the timer fires now, 300 ms late
    gevent.sleep(0.001)
    print("late", lag.lag > 0.2)

    # While late and a worker is busy, the fetcher waits; with no worker busy it goes on at once.
    stopping = threading.Event()
    print("no worker busy: goes on", gevent.with_timeout(0.01, lag.wait_until_prompt, stopping,
                                                        busy=lambda: 0, timeout_value="waited") is None)
    hog = gevent.spawn(lambda: [compute(0.2) or gevent.sleep(0.001) for _ in range(5)])
    gevent.sleep(0.25)
    print("busy and late: waits", gevent.with_timeout(0.05, lag.wait_until_prompt, stopping,
                                                     busy=lambda: 1, timeout_value="waited") == "waited")
    hog.join()
    gevent.sleep(0.1)
    print("prompt again: goes on", gevent.with_timeout(0.5, lag.wait_until_prompt, stopping,
                                                      busy=lambda: 1, timeout_value="waited") is None)
""")


def test_the_fetcher_waits_while_the_loop_is_late_and_only_then() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == ["idle True", "late True", "no worker busy: goes on True",
                                        "busy and late: waits True", "prompt again: goes on True"]


CLAIMS = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import time, gevent
    from parley.worker.pool import WorkerPool

    pool = WorkerPool(inbox=None, pipeline=None, workers=8)  # slots and pacing only: nothing is claimed
    pool._lag.start()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:  # answers hogging the loop for 300 ms
        pass
    gevent.sleep(0.001)
    print("late", pool._acquire_slots())
    pool._release_slots(1)
    deadline = time.monotonic() + 10  # prompt again once the timer fires on time (a loaded CI: later)
    while pool._lag.late and time.monotonic() < deadline:
        gevent.sleep(0.01)
    print("prompt", pool._acquire_slots())
""")


def test_a_late_loop_gets_one_more_worker_not_a_batch() -> None:
    done = subprocess.run([sys.executable, "-c", CLAIMS], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == ["late 1", "prompt 8"]
