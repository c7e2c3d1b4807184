"""Next actions against the simulator's true counterfactual effects, on one world pair: the models of seed 31
(8,000 leads, evaluation pass only) judged on seed 32 (6,000 leads). Prints and writes the figures of
`training.next_actions.evaluate_next_actions` (docs/actions.md reads them).

    python -m bench.next_actions [--out bench/results/next_actions.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from features.contract import load_export
from leadscore.tools.simulator import simulate
from training.next_actions import evaluate_next_actions
from training.train import train_models

DATA = Path("bench/.data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench/results/next_actions.json")
    args = parser.parse_args()
    worlds = {}
    for seed, leads in ((31, 8000), (32, 6000)):
        worlds[seed] = DATA / f"sim-{leads}-{seed}"
        if not (worlds[seed] / "leads.parquet").exists():
            simulate(leads, seed, worlds[seed], progress=False)
    started = time.perf_counter()
    result = train_models(load_export(worlds[31]).tables, progress=False, refit=False)
    figures = evaluate_next_actions(result.artifact, worlds[32])
    figures |= {"train_seconds": time.perf_counter() - started, "test_auc": result.metrics["test_auc"]}
    Path(args.out).write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
