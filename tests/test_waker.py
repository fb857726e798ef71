"""The supervisor's sleep ends when a child exits, so a freed slot is refilled at once."""

import os
import subprocess
import sys
import time

import pytest

from mlagents_learn import Waker


@pytest.mark.skipif(os.name == "nt", reason="SIGCHLD is POSIX")
def test_the_sleep_ends_when_a_child_exits_not_at_its_timeout():
    with Waker() as waker:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
        began = time.monotonic()
        while child.poll() is None and time.monotonic() - began < 30:
            waker.sleep(30)
        assert child.poll() == 0
        assert time.monotonic() - began < 20  # woken by the exit, not by the 30 s timeout


def test_outside_the_main_thread_it_is_a_plain_sleep():
    import threading

    slept = []

    def worker():
        with Waker() as waker:
            began = time.monotonic()
            waker.sleep(0.05)
            slept.append(time.monotonic() - began)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert slept and slept[0] >= 0.05
