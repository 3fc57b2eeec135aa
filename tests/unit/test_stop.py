"""The stop request a signal handler records: no lock taken in the handler, one Ctrl-C
that arrives twice is one, a later second one asks to leave at once."""

import os
import signal
import subprocess
import sys
import threading
import textwrap

from fastsync.run import SAME_SIGNAL, StopFlag, StopRequest

from ..conftest import ROOT


def test_the_first_signal_asks_for_an_orderly_stop():
    stop = StopRequest()
    assert not stop.event.is_set()
    assert stop.request(signal.SIGTERM, now=100.0) is False
    assert stop.event.is_set() and stop.event.wait(0) and stop.exit_code == 143


def test_a_second_signal_soon_after_is_the_same_one_and_later_leaves():
    stop = StopRequest()
    stop.request(signal.SIGINT, now=100.0)
    assert stop.request(signal.SIGINT, now=100.0 + SAME_SIGNAL / 2) is False
    assert stop.request(signal.SIGINT, now=100.0 + SAME_SIGNAL + 0.5) is True
    assert stop.exit_code == 130


def test_the_flag_wakes_a_waiting_thread_and_times_out_when_not_set():
    flag = StopFlag()
    assert flag.wait(0.05) is False
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(flag.wait(30)))
    waiter.start()
    flag.set()
    waiter.join(10)
    assert woke == [True]


# The main thread waits on the stop event (run.py's loop, a retry's pause) while signals
# arrive; a handler that takes the event's lock (Event.set) can meet it held by the very
# thread it interrupted: it then waits forever (or, with further signals, recurses until
# RecursionError). Recording the request must take no lock.
STRESS = textwrap.dedent("""
    import signal, sys, threading, time
    from fastsync.run import StopRequest
    stop = StopRequest()
    signal.signal(signal.SIGUSR1, lambda signum, frame: stop.request(signum))
    main, done = threading.main_thread().ident, []
    def send():
        while not done:
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.001)
    threading.Thread(target=send, daemon=True).start()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        stop.event.wait(0.0001)
        stop.event.is_set()
    done.append(1)
    print("survived")
""")


def test_signals_while_the_main_thread_waits_on_the_stop_event_never_hang_it():
    proc = subprocess.run([sys.executable, "-c", STRESS], capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode().strip() == "survived"
