"""Shared fixtures: one simulated world and one trained, registered model per test session.

`make test` runs the tests in two pytest-xdist workers (by file, so a file's tests keep their order). The world
and the trained models are built once per run, by the first worker that needs them, and read by the other
(`built_once`); each worker registers the models in its own MLflow and BentoML stores."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def pytest_configure(config: pytest.Config) -> None:
    # MLflow and BentoML stores live in a throw-away home, set before either library is imported.
    home = Path(tempfile.mkdtemp(prefix="leadscore-test-"))
    os.environ["LEADSCORE_HOME"] = str(home)
    os.environ["BENTOML_HOME"] = str(home / "bentoml")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see features/__init__.py


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder every worker of this run sees: $LEADSCORE_TEST_RUN when set (`make test` sets it, so its second
    pytest reuses what the first built; it empties the folder first), else the parent of the workers' own
    temporary folders (without xdist, the session's temporary folder)."""
    if shared := os.environ.get("LEADSCORE_TEST_RUN"):
        Path(shared).mkdir(parents=True, exist_ok=True)
        return Path(shared)
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


def built_once(run_dir: Path, name: str, build: Callable[[Path], None]) -> Path:
    """`run_dir / name`, built by `build` once per run: the first worker builds it under a file lock, the others
    wait for it and use what it built."""
    target = run_dir / name
    asked = time.perf_counter()
    with FileLock(str(target) + ".lock"):
        waited = time.perf_counter() - asked
        if not (target / ".built").exists():
            target.mkdir(parents=True, exist_ok=True)
            build(target)
            (target / ".built").touch()
            with (run_dir / "built_once.log").open("a") as log:  # where the set-up time of a run goes
                log.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} built {name} in "
                          f"{time.perf_counter() - asked - waited:.0f} s\n")  # fmt: skip
        elif waited > 1:
            with (run_dir / "built_once.log").open("a") as log:
                log.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} waited {waited:.0f} s for {name}\n")
    return target


@pytest.fixture(scope="session")
def sim_dir(run_dir: Path) -> Path:
    """A simulated export used by most tests (seed 11, never used to tune the simulator)."""
    from leadscore.tools.simulator import simulate

    return (
        built_once(run_dir, "sim", lambda d: simulate(6000, 11, d / "export", story="classic", progress=False))
        / "export"
    )


@pytest.fixture(scope="session")
def tables(sim_dir: Path):
    from features.contract import load_export

    return load_export(sim_dir).tables


@pytest.fixture(scope="session")
def trained(run_dir, sim_dir, tables):
    """Train every model, pass the gate (no champion yet), log to MLflow (SQLite store), register as
    champion and import into BentoML."""
    from models.settings import Settings
    from training.gate import publish_gate
    from training.registry import current_champion, import_champion_to_bentoml, log_and_register
    from training.train import MODEL_NAME, train_models

    def train(folder: Path) -> None:
        # The evaluation pass's models are served (refit=False): the served refit on all history is the same
        # recipe and runs in the README demo's test and the retrain notebook; here it would double the set-up.
        result = train_models(tables, intent_labels=sim_dir / "labels" / "intent.csv", progress=False, refit=False)
        (folder / "result.pickle").write_bytes(pickle.dumps(result))

    settings = Settings.from_env()
    result = pickle.loads((built_once(run_dir, "trained", train) / "result.pickle").read_bytes())
    h = result.holdout
    gate = publish_gate(h.y, h.gate_scores(), MODEL_NAME, current_champion(settings), tables, h.snapshots)
    run_id, version = log_and_register(result, settings, "test world seed 11", gate)
    tag = import_champion_to_bentoml(settings)
    return {"settings": settings, "result": result, "run_id": run_id, "version": version, "tag": tag, "gate": gate}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def fitted_pipeline(tables):
    """A feature pipeline fitted on 4,000 matured training snapshots of the test world."""
    from features.pipeline import FeaturePipeline
    from features.snapshots import make_snapshots

    snaps = make_snapshots(tables)
    snaps = snaps[snaps["matured"]].sample(4000, random_state=0).reset_index(drop=True)
    pipeline = FeaturePipeline()
    pipeline.fit_transform(tables, snaps, snaps["won_within"].to_numpy())
    return pipeline


_SECONDS_PER_FILE: dict[str, float] = {}
_SPANS: dict[tuple[str, str], list[float]] = {}  # (worker, file) -> [first start, last stop]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Seconds per test file, setup and teardown included (shared fixtures count where they are first built),
    and when each worker ran each file (where a worker waited shows as a file that took long)."""
    path = report.nodeid.split("::")[0]
    _SECONDS_PER_FILE[path] = _SECONDS_PER_FILE.get(path, 0.0) + report.duration
    worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", "main")
    span = _SPANS.setdefault((worker, path), [report.start, report.stop])
    span[0], span[1] = min(span[0], report.start), max(span[1], report.stop)


def pytest_terminal_summary(terminalreporter) -> None:
    """The time each test file took, slowest first, and each worker's files in the order it ran them, also in
    test-artifacts/durations[-alone].md (CI time per file; `-alone`: a run without workers)."""
    if not _SECONDS_PER_FILE:
        return
    rows = sorted(_SECONDS_PER_FILE.items(), key=lambda kv: -kv[1])
    total = sum(_SECONDS_PER_FILE.values())
    lines = ["| seconds | share | file |", "|---:|---:|---|"]
    lines += [f"| {s:.1f} | {s / total:.0%} | {path} |" for path, s in rows]
    terminalreporter.write_sep("=", f"seconds per test file ({total:.0f} s in all)")
    for line in lines[2:]:
        terminalreporter.write_line(line)
    began = min(start for start, _ in _SPANS.values())
    timeline = ["| worker | from, s | to, s | file |", "|---|---:|---:|---|"]
    timeline += [
        f"| {worker} | {start - began:.0f} | {stop - began:.0f} | {path} |"
        for (worker, path), (start, stop) in sorted(_SPANS.items(), key=lambda kv: (kv[0][0], kv[1][0]))
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    alone = all(worker == "main" for worker, _ in _SPANS)
    (ARTIFACTS / f"durations{'-alone' if alone else ''}.md").write_text(
        "# Test time per file\n\n"
        + "\n".join(lines)
        + "\n\n## When each worker ran each file\n\n"
        + "\n".join(timeline)
        + "\n"
    )


def _postgres_bin() -> Path:
    """The bin folder of Debian's PostgreSQL server, installing the `postgresql` package when missing (as the
    Makefile's test target does)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "postgresql"], check=True, env=env)
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert found, "Debian's postgresql package installed no initdb under /usr/lib/postgresql"
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the session: initdb + pg_ctl in a temporary folder on a free port, as the
    current user (as root: as the package's unprivileged `postgres` user, since the server refuses root)."""
    import pwd
    import shutil

    bindir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="leadscore-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "leadscore", "-A", "trust", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w"]
    subprocess.run([*start, "-t", "60", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://leadscore@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(root, ignore_errors=True)
