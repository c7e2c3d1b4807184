"""The benchmark suite in one command: every benchmark in turn, then one summary table.

    python -m bench [--only service explain features training_rows profile] [--out bench/results/README.md]

Each benchmark runs in its own process and writes its own report in bench/results/; the summary collects
their headline figures (ratios measured within each benchmark's run). The service benchmark trains a
champion into bench/.service-home the first time (or uses $LEADSCORE_HOME). The soak (five minutes,
`python -m bench.soak`) and scaling (100k to 1M leads, an hour and more on two cores:
`python -m bench.scaling`) are separate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from bench.common import HEADLINE
from bench.report import write_report

SUITE = {
    "service": ["bench.service"],
    "explain": ["bench.explain"],
    "features": ["bench.features", "--leads", "20000", "--online-repeats", "50"],
    "training_rows": ["bench.training_rows"],
    "profile": ["bench.profile"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(SUITE), default=list(SUITE))
    parser.add_argument("--out", default="bench/results/README.md")
    args = parser.parse_args()
    rows, seconds = [], {}
    for name in args.only:
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", *SUITE[name]], stdout=subprocess.PIPE, text=True)
        seconds[name] = time.perf_counter() - started
        sys.stdout.write(run.stdout)
        if run.returncode != 0:
            raise SystemExit(f"bench {name} failed (exit {run.returncode}); its output is above")
        for line in run.stdout.splitlines():
            if line.startswith(HEADLINE):
                rows += [[name, *row] for row in json.loads(line.removeprefix(HEADLINE))]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    lines = [
        "# Benchmark results",
        "",
        f"`python -m bench` on {platform.node()}: {platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}; "
        + ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items())
        + ". One run; every ratio compares two figures measured in the same benchmark run.",
        "",
        "| benchmark | figure | leadscore | reference | ratio | bar |",
        "|---|---|---|---|---|---|",
        *["| " + " | ".join(row) + " |" for row in rows],
        "",
        "Details: " + ", ".join(f"[{name}]({name}.md)" for name in args.only) + "; scaling: [scaling](scaling.md).",
    ]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
