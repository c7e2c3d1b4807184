"""The demo's service goes down with the demo, even when a worker ignores SIGTERM (seen under load in CI:
BentoML's entry worker hung after the model worker had stopped)."""

from __future__ import annotations

import subprocess
import sys
import time

from leadscore.tools.cli import stop_server

# A supervisor that exits on SIGTERM only after its child does, and a child that ignores SIGTERM: the shape
# of the hang (the supervisor waits for a worker that never stops).
HANGING = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "print('child', flush=True); time.sleep(600)"])
signal.signal(signal.SIGTERM, lambda *_: (child.terminate(), child.wait(), sys.exit(0)))
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    return subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip() not in (
        "",
        "Z",
    )


def test_a_server_that_hangs_on_sigterm_is_killed_with_its_workers(capsys) -> None:
    server = subprocess.Popen([sys.executable, "-c", HANGING], start_new_session=True)
    time.sleep(1.0)  # both processes are up
    children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the child process did not start"
    stop_server(server, grace_seconds=2)
    assert server.returncode is not None
    assert "did not stop within 2 s of SIGTERM; killing it" in capsys.readouterr().err
    deadline = time.monotonic() + 5
    while any(_alive(int(pid)) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(int(pid)) for pid in children), "a worker outlived the kill"


def test_a_server_that_stops_on_sigterm_is_not_killed(capsys) -> None:
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    stop_server(server, grace_seconds=10)
    assert server.returncode == -15  # SIGTERM, not SIGKILL (-9)
    assert "killing it" not in capsys.readouterr().err
