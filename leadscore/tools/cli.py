"""The `leadscore` command. Sub-commands parse arguments and call library functions; nothing more."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from models.settings import Settings

DEFAULT_PORT = 3000


def _cmd_simulate(args: argparse.Namespace) -> int:
    from leadscore.tools.simulator import simulate
    from leadscore.tools.simulator.realism import out_of_range, ranges_for, realism_figures

    started = time.perf_counter()
    summary = simulate(args.leads, args.seed, args.out, story=args.story, table_format=args.format)
    print(f"wrote {summary.out_dir} in {time.perf_counter() - started:.1f}s: " + json.dumps(summary.counts))
    story = json.loads((Path(args.out) / "truth" / "story.json").read_text())["name"]
    print(f"story: {story} (truth/story.json; docs/simulator.md)")
    figures = realism_figures(args.out)
    print("realism: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
    for name, (value, bounds) in out_of_range(figures, ranges_for(args.out)).items():
        print(f"warning: {name} = {value:.3f} is outside its documented range {bounds}")
    return 0


def _load(data: str, shown: int | None = 20):
    """Load an export and print its summary and problems (the first `shown`, or all)."""
    from features.contract import load_export

    result = load_export(data)
    print(result.summary())
    for problem in result.problems[:shown]:
        print(f"  {problem}")
    if shown is not None and len(result.problems) > shown:
        print(f"  ... {len(result.problems) - shown} more (leadscore validate --data {data} lists them all)")
    return result


def _cmd_import(args: argparse.Namespace) -> int:
    from leadscore.tools.importers import run_import

    result = run_import(args.vendor, args.source, args.out, mapping=args.mapping, table_format=args.format)
    rows = ", ".join(f"{name} {n}" for name, n in result.report.contract_rows.items())
    report = result.report
    print(f"wrote {args.out}: {rows}")
    print(f"{report.refused_rows()} source rows refused, {len(report.excluded)} fields left out as leaks, "
          f"{len(report.warnings)} warnings: {result.report_files[0]}")  # fmt: skip
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    return 1 if _load(args.data, shown=None).errors else 0


def _cmd_train(args: argparse.Namespace) -> int:
    if args.flat:
        return _train_flat(args)
    if not args.data:
        raise ValueError("--data is required (a directory of contract tables), or pass --flat CONFIG")
    from training.gate import publish_gate
    from training.registry import current_champion, import_champion_to_bentoml, log_and_register
    from training.train import MODEL_NAME, train_models

    settings = Settings.from_env()
    tables = _load(args.data).tables
    labels = args.intent_labels or Path(args.data) / "labels" / "intent.csv"
    if not Path(labels).exists():
        if args.intent_labels:
            raise FileNotFoundError(f"intent labels {labels} not found")
        print(f"no labelled intent CSV at {labels}: training without the intent model (pass --intent-labels)")
        labels = None
    if args.dask:
        from leadscore.jobs.scaleout import DaskFeatures, dask_client

        with dask_client(args.dask) as client:
            result = train_models(tables, intent_labels=labels, intent_label_set=args.intent_label_set,
                                  engine=DaskFeatures(client))  # fmt: skip
    else:
        result = train_models(tables, intent_labels=labels, intent_label_set=args.intent_label_set)
    audit = result.evaluation["audit"]
    for row in audit[audit["flagged"]].itertuples():
        print(f"leakage audit: {row.feature}: {row.reason}")
    holdout = result.holdout
    gate = publish_gate(
        holdout.y, holdout.gate_scores(), MODEL_NAME, current_champion(settings), tables, holdout.snapshots
    )
    run_id, version = log_and_register(result, settings, str(Path(args.data).resolve()), gate)
    print("metrics (time-held-out): " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
    card = result.artifact.card
    if card:
        print(f"model selection: {card['family']} served; {card['note']}")
    print(f"publish gate: {gate.decision}")
    for reason in gate.reasons:
        print(f"  {reason}")
    print(f"MLflow run {run_id}; registered {settings.model_name} version {version}")
    if gate.promote:
        print(f"BentoML model: {import_champion_to_bentoml(settings)}")
    print(f"MLflow store: {settings.tracking_uri} (report: run {run_id}, artifacts report/report.html)")
    return 0


def _train_flat(args: argparse.Namespace) -> int:
    from training.flat import train_flat
    from training.registry import log_flat_run

    result = train_flat(args.flat, data_path=args.data)
    for row in result.audit[result.audit["flagged"]].itertuples():
        where = "used by the model!" if row.in_model else "excluded by the config"
        print(f"leakage audit: {row.feature} ({where}): {row.reason}")
    print("metrics (5-fold): " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if isinstance(v, float)))
    print(f"MLflow run {log_flat_run(result, Settings.from_env())}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_champion

    out = evaluate_champion(Settings.from_env(), args.data)
    print(json.dumps(out["headline"], ensure_ascii=False, indent=2))
    print(f"report: {out['report']} (also logged to MLflow run {out['run_id']})")
    if args.routing and (Path(args.data) / "truth" / "reps.parquet").exists():
        from leadscore.tools.routing import evaluate_world, table_lines

        print(f"routing (issue 18): leadscore trained on this export as of day {args.routing_day}, routing the next "
              "30 days of new leads; true 90-day win rate per policy from the simulator (docs/assignment.md) ...")  # fmt: skip
        import pandas as pd

        figures = evaluate_world(args.data, args.routing_day, 30, select=False)
        print("\n".join(table_lines(pd.DataFrame({Path(args.data).name: figures}))))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from leadscore.jobs.batch import score_export
    from models.artifact import LeadArtifact
    from models.champion import load_champion
    from models.tiers import TierThresholds

    artifact = LeadArtifact.load(args.model_dir) if args.model_dir else load_champion(Settings.from_env())
    artifact.tiers = TierThresholds.from_env()
    started = time.perf_counter()
    options = {"as_of": args.as_of, "chunk_size": args.chunk_size, "include_closed": args.include_closed}
    if args.dask:
        from leadscore.jobs.scaleout import dask_client, score_export_on_dask

        with dask_client(args.dask) as client:
            summary = score_export_on_dask(
                artifact, args.data, args.out, client, leads_per_partition=args.leads_per_partition, **options
            )
    else:
        summary = score_export(artifact, args.data, args.out, **options)
    seconds = time.perf_counter() - started
    print(
        f"scored {summary['leads']} leads as of {summary['as_of']} with {artifact.model_version} in {seconds:.1f}s: {args.out}"
    )
    return 0


def serve_command(port: int, host: str) -> list[str]:
    """The `bentoml serve` command line for the scoring service."""
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:LeadScoring",
        "--port",
        str(port),
        "--host",
        host,
    ]


def _cmd_serve(args: argparse.Namespace) -> int:
    from leadscore.tools.demo import port_is_free

    if not port_is_free(args.port, args.host):
        raise ValueError(f"port {args.port} is already in use on {args.host}; stop that service or pass --port")
    from serving.service import StartupError, stored_model

    try:  # before BentoML starts: a missing or altered model is refused here, with the reason and exit code 2
        stored_model()
    except StartupError as exc:
        print(f"leadscore serve: cannot start: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    demo_key = Settings.from_env().home / "api_key"
    if not (env.get("LEADSCORE_API_KEYS") or env.get("LEADSCORE_API_KEYS_FILE")) and demo_key.exists():
        env["LEADSCORE_API_KEYS_FILE"] = str(demo_key)  # the key `leadscore demo` created
    return run_until_signalled(serve_command(args.port, args.host), env)


def run_until_signalled(command: list[str], env: dict[str, str], grace_seconds: float = 30) -> int:
    """Run the server in its own process group and hand it the SIGTERM / SIGINT this process gets (what systemd,
    supervisord, Docker or Kubernetes send to the process they started): BentoML's supervisor then lets the
    requests in flight finish and stops its workers. Returns when every process of the server has stopped; a
    group still up `grace_seconds` after the signal is killed, so the port is always left free."""
    server = subprocess.Popen(command, env=env, start_new_session=True)
    signalled: list[int] = []

    def forward(signum, _frame) -> None:
        signalled.append(signum)
        if server.poll() is None:
            server.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                code = server.wait(timeout=grace_seconds if signalled else None)
                break
            except subprocess.TimeoutExpired:
                print(
                    f"the service did not stop within {grace_seconds:.0f} s of the signal; killing it", file=sys.stderr
                )
                os.killpg(server.pid, signal.SIGKILL)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    _stop_group(server.pid, grace_seconds)
    return 0 if signalled else code


def _stop_group(pgid: int, grace_seconds: float) -> None:
    """Wait for what is left of a stopped server's process group (its workers), then kill the rest."""
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _cmd_demo(args: argparse.Namespace) -> int:
    """Simulate a CRM, train, serve on localhost and answer an example request."""
    from leadscore.tools.demo import demo_api_key, example_request, port_is_free, wait_until_ready

    if not port_is_free(args.port):
        raise ValueError(f"port {args.port} is already in use (another leadscore service?); stop it or pass --port")
    settings = Settings.from_env()
    data = settings.home / "demo-data"
    # The demo keeps the classic story: the README's example answer and figures were measured on it.
    _cmd_simulate(argparse.Namespace(leads=args.leads, seed=args.seed, out=str(data), format="csv", story="classic"))
    _cmd_train(argparse.Namespace(data=str(data), intent_labels=None, intent_label_set=None, flat=None, dask=None))
    request_file = settings.home / "example_request.json"
    request_file.write_text(json.dumps(example_request(data), ensure_ascii=False, indent=2))
    key = os.environ.get("LEADSCORE_API_KEYS", "").split(",")[0].strip() or demo_api_key(settings.home)
    env = {**os.environ, "LEADSCORE_API_KEYS": os.environ.get("LEADSCORE_API_KEYS") or key}
    # Its own process group, so a server that hangs on the way down can be stopped with all its workers.
    server = subprocess.Popen(serve_command(args.port, "127.0.0.1"), env=env, start_new_session=True)
    # Terminated (not only Ctrl-C): leave through `finally` so the service goes down with the demo.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        url = f"http://127.0.0.1:{args.port}"
        wait_until_ready(url, server)
        import httpx

        headers = {"content-type": "application/json", "x-api-key": key}
        answer = httpx.post(f"{url}/score", content=request_file.read_bytes(), headers=headers, timeout=30)
        answer.raise_for_status()
        key_shown = f"$(cat {settings.home / 'api_key'})" if not os.environ.get("LEADSCORE_API_KEYS") else "$KEY"
        print("\nThe service is answering. Example request:")
        print(
            f"  curl -s -X POST {url}/score -H 'content-type: application/json' -H \"X-API-Key: {key_shown}\" "
            f"-d @{request_file}"
        )
        print("Its answer:")
        print(json.dumps(answer.json(), ensure_ascii=False, indent=2))
        if args.no_wait:
            return 0
        print(f"\nServing at {url} (API docs at {url}/, OpenAPI spec at {url}/docs.json); press Ctrl-C to stop.")
        server.wait()
        return server.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(server)


def stop_server(server: subprocess.Popen, grace_seconds: float = 30) -> None:
    """SIGTERM (requests in flight finish), then SIGKILL to the process group if it is still up after the
    grace period: under load BentoML's entry worker has been seen to hang after the model worker stopped."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        print(f"the service did not stop within {grace_seconds:.0f} s of SIGTERM; killing it", file=sys.stderr)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _cmd_keys(args: argparse.Namespace) -> int:
    from serving.config import add_key, hash_key_file

    if args.action == "new":
        key, ident = add_key(args.file, args.name)
        print(f"new API key (shown once; {args.file} keeps only its digest, id {ident}):\n{key}")
    else:
        print(f"{hash_key_file(args.file)} keys in {args.file} replaced by their digests")
    return 0


DASK_HELP = "compute on Dask: 'local' (a LocalCluster on this machine) or a scheduler address (tcp://host:8786)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadscore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write a simulated CRM export with its hidden truth")
    p.add_argument("--leads", type=int, default=20_000, help="number of leads (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument(
        "--story",
        help="the generative story: classic, profile, behaviour, notes, rep, or a story.json path "
        "(default: drawn from the seed; docs/simulator.md)",
    )
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("import", help="turn a CRM's export into a contract export and an import report")
    p.add_argument(
        "--from", dest="vendor", required=True, choices=["salesforce", "hubspot", "odoo", "fxiaoke", "mapping"]
    )
    p.add_argument("--source", required=True, help="the CRM export: a directory of its files (docs/import.md)")
    p.add_argument("--out", required=True, help="output directory: contract tables and import_report.md/.json")
    p.add_argument("--mapping", help="YAML: the table description (--from mapping) or a vendor's overrides")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("validate", help="check a CRM export against the data contract")
    p.add_argument("--data", required=True, help="directory of contract tables")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("train", help="train the models, track them in MLflow, gate and hand them to BentoML")
    p.add_argument("--data", help="directory of contract tables (or, with --flat, the flat table's path)")
    p.add_argument("--intent-labels", help="labelled CSV of form texts (text,label); default DATA/labels/intent.csv")
    p.add_argument(
        "--intent-label-set", help="the allowed intent labels, one per line or a JSON list (default: those in the CSV)"
    )
    p.add_argument("--flat", metavar="CONFIG", help="train on one flat table described by a JSON config")
    p.add_argument("--dask", metavar="ADDRESS", help=DASK_HELP)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate the champion on an export (time split, baselines, oracle, report)")
    p.add_argument("--data", required=True, help="an export not used in training (a simulated one adds the oracle)")
    p.add_argument("--no-routing", dest="routing", action="store_false",
                   help="skip the routing evaluation a simulated export gets (it trains a router: minutes)")  # fmt: skip
    p.add_argument("--routing-day", type=int, default=200, help="day of the simulated year the routed period starts")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("score", help="score an export's leads in batch (the service's code, chunk by chunk)")
    p.add_argument("--data", required=True, help="directory of contract tables")
    p.add_argument("--out", required=True, help="output file: .jsonl (whole answers), .csv or .parquet (headlines)")
    p.add_argument("--as-of", help="ISO 8601 time to score as of (default: the export's latest timestamp)")
    p.add_argument("--chunk-size", type=int, default=500, help="leads per chunk (default 500)")
    p.add_argument("--include-closed", action="store_true", help="also score leads closed by as_of")
    p.add_argument("--model-dir", help="a saved model artifact directory (default: the registry's champion)")
    p.add_argument("--dask", metavar="ADDRESS", help=DASK_HELP)
    p.add_argument(
        "--leads-per-partition", type=int, default=25_000, help="with --dask: leads per partition (default 25000)"
    )
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("serve", help="start the BentoML scoring service")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("keys", help="API keys: add one to the key file (stored hashed), or hash a file's clear keys")
    p.add_argument("action", choices=["new", "hash"])
    p.add_argument("--file", default=os.environ.get("LEADSCORE_API_KEYS_FILE"), required=not os.environ.get(
        "LEADSCORE_API_KEYS_FILE"), help="the key file (default $LEADSCORE_API_KEYS_FILE)")  # fmt: skip
    p.add_argument("--name", default="", help="with new: a label written beside the digest")
    p.set_defaults(func=_cmd_keys)

    p = sub.add_parser("demo", help="simulate, train, serve and answer an example request")
    p.add_argument("--leads", type=int, default=5_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--no-wait", action="store_true", help="stop the service after the example request")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TQDM_MININTERVAL", "1")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ConnectionError) as exc:  # ContractError is a ValueError: no trace
        print(f"leadscore {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if not isinstance(exc, MlflowException):
            raise
        print(
            f"leadscore {args.command}: error: {exc.message} (has `leadscore train` run with this LEADSCORE_HOME?)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
