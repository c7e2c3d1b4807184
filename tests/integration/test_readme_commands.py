"""README's first command in miniature: `leadscore demo` simulates, trains, serves and answers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow


def test_demo_ends_with_the_service_answering_its_example(tmp_path: Path) -> None:
    env = {**os.environ, "LEADSCORE_HOME": str(tmp_path / "home")}
    cmd = [
        sys.executable,
        "-m",
        "leadscore.tools.cli",
        "demo",
        "--leads",
        "1500",
        "--port",
        str(free_port()),
        "--no-wait",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "The service is answering" in done.stdout
    assert re.search(r'"health_score": \d', done.stdout)
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", done.stdout), "no phone numbers printed"


def test_cli_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "leadscore.tools.cli", "train", "--data", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "not a directory" in done.stderr and "Traceback" not in done.stderr


def test_demo_refuses_a_busy_port_instead_of_asking_another_server(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "LEADSCORE_HOME": str(tmp_path / "home")}
        cmd = [sys.executable, "-m", "leadscore.tools.cli", "demo", "--port", str(port), "--no-wait"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"port {port} is already in use" in done.stderr and "Traceback" not in done.stderr
