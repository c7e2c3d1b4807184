"""Where the time of an answer goes: pyinstrument profiles of one-lead requests and of a batch, by step.

    python -m bench.profile [--home DIR] [--singles 20] [--batch 400] [--out bench/results/profile.md]

Every request holds leads not scored before in this process, so no cache (jieba's tokens, the text
embeddings) flatters the figures. Writes the table (seconds per lead in each step of
`LeadArtifact.score_requests`) and pyinstrument's flame graphs as HTML next to it (profile-single.html,
profile-batch.html: open them in a browser). The health model's predict + pred_contrib for the same leads is
timed alone, and one-lead answers without the profiler: the goal of issue 20 compares the two.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from bench.common import bench_home, print_headline
from bench.report import write_report

# The steps of an answer, by the function that does each (pyinstrument names a method Class.method).
STEPS = {
    "read the request (contract checks)": ["request_to_tables", "earlier_leads"],
    "owner figures and duplicate screen": ["FeaturePipeline.context"],
    "next actions (what-if features and re-scoring)": ["recommend"],
    "features": ["FeaturePipeline.transform"],
    "health model and its contributions": ["explain"],
    "stage, close date, risk, intent models": [
        "StageModel.answer", "CloseDateModel.answer", "RiskModel.answer", "IntentModel.answer",
    ],
    "factors and sentences": ["fold"],
    "answer objects (pydantic)": ["SchemaValidator.validate_python", "BaseModel.model_copy", "_request_answer"],
}  # fmt: skip


def _name(frame) -> str:
    return f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function


def step_seconds(root) -> dict[str, float]:
    """Seconds per step: the first frame on each path that names a step's function (so the features that
    next actions compute count for next actions)."""
    wanted = {function: step for step, functions in STEPS.items() for function in functions}
    seconds = dict.fromkeys(STEPS, 0.0)
    stack = [root]
    while stack:
        frame = stack.pop()
        step = wanted.get(_name(frame))
        if step is not None:
            seconds[step] += frame.time
        else:
            stack.extend(frame.children)
    seconds["everything else"] = root.time - sum(seconds.values())
    return seconds


def profiled(call, requests: list, out_html: Path) -> tuple[float, dict[str, float]]:
    """Wall seconds of `call` over the requests, and seconds per step, under pyinstrument."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.004)  # 4 ms samples keep the flame graphs small enough to keep in git
    started = time.perf_counter()
    profiler.start()
    for request in requests:
        call(request)
    profiler.stop()
    wall = time.perf_counter() - started
    out_html.write_text(profiler.output_html())
    return wall, step_seconds(profiler.last_session.root_frame())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="LEADSCORE_HOME with a trained champion (default: $LEADSCORE_HOME)")
    parser.add_argument("--singles", type=int, default=20, help="one-lead requests profiled")
    parser.add_argument("--batch", type=int, default=400, help="leads in the profiled batch request")
    parser.add_argument("--out", default="bench/results/profile.md")
    args = parser.parse_args()
    _, data = bench_home(args.home)
    import pandas as pd

    from bench.service import typical_leads
    from features.contract import request_to_tables
    from models.champion import load_champion
    from models.settings import Settings

    artifact = load_champion(Settings.from_env()).warm_up()
    warm, untimed = 5, 20  # warm-up requests; leads for the model's timing and the unprofiled answers
    as_of, leads = typical_leads(data, warm + args.singles + args.batch + 2 * untimed)
    request = lambda group: {"as_of": as_of, "leads": group}  # noqa: E731
    for lead in leads[:warm]:
        artifact.score_request(request([lead]))
    singles = [request([lead]) for lead in leads[warm : warm + args.singles]]
    batch = [request(leads[warm + args.singles : warm + args.singles + args.batch])]
    # The profiler's own cost is large on the many small calls of one lead: the whole answer is timed
    # without it (other leads), the profile gives the shares.
    plain = []
    for lead in leads[-2 * untimed : -untimed]:
        started = time.perf_counter()
        artifact.score_request(request([lead]))
        plain.append(time.perf_counter() - started)
    plain_ms = 1000 * sorted(plain)[len(plain) // 2]

    out = Path(args.out)
    single_wall, single_steps = profiled(artifact.score_request, singles, out.with_name("profile-single.html"))
    batch_wall, batch_steps = profiled(artifact.score_request, batch, out.with_name("profile-batch.html"))

    # The scale: the health model's predict + pred_contrib of one lead whose features are computed already.
    model_seconds = []
    for lead in leads[-untimed:]:
        _, result = request_to_tables(request([lead]))
        snapshot = pd.DataFrame({"lead_id": result.tables["leads"]["lead_id"], "as_of": as_of})
        features = artifact.pipeline.transform(result.tables, snapshot)
        started = time.perf_counter()
        artifact.health.predict(features)
        artifact.health.contributions(features)
        model_seconds.append(time.perf_counter() - started)
    model_ms = 1000 * sorted(model_seconds)[len(model_seconds) // 2]

    per_single = 1000 * single_wall / len(singles)
    per_batch = 1000 * batch_wall / args.batch
    lines = [
        "# Where an answer's time goes",
        "",
        f"`python -m bench.profile --singles {args.singles} --batch {args.batch}` on {platform.node()} "
        f"({os.cpu_count()} cores), {time.strftime('%Y-%m-%d %H:%M')}; model {artifact.model_version} "
        f"(health model {artifact.card.get('family', 'unrecorded')}). "
        "Leads never scored before in this process; pyinstrument sampling every 4 ms (its overhead is in the figures). "
        "Flame graphs: [one-lead requests](profile-single.html), [the batch](profile-batch.html).",
        "",
        "| step | one-lead request, ms | share | batch, ms per lead | share |",
        "|---|---|---|---|---|",
    ]
    for step in single_steps:
        one, many = 1000 * single_steps[step] / len(singles), 1000 * batch_steps[step] / args.batch
        lines.append(f"| {step} | {one:.1f} | {one / per_single:.0%} | {many:.2f} | {many / per_batch:.0%} |")
    lines += [
        f"| **whole answer, profiled** | **{per_single:.1f}** | | **{per_batch:.2f}** | |",
        "",
        f"Without the profiler (median of {untimed} one-lead requests): **{plain_ms:.0f} ms** for the whole answer; "
        f"the health model's predict + pred_contrib for one lead whose features are computed: {model_ms:.1f} ms. "
        f"One lead's answer is **{plain_ms / model_ms:.1f}x** its health model (issue 20's goal: 10x).",
    ]
    write_report(args.out, lines)
    print_headline(
        [
            ["one-lead answer in process (ms)", f"{plain_ms:.0f}", f"health predict + pred_contrib {model_ms:.1f}",
             f"{plain_ms / model_ms:.1f}x", "<= 10x (issue 20)"],
            ["batch answer per lead, profiled (ms)", f"{per_batch:.1f}", "", "", "reported"],
        ]
    )  # fmt: skip


if __name__ == "__main__":
    main()
