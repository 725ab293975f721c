"""Interleaved A/B of two checkouts of Tandem, or of two settings on one checkout, on the labeling loop
(queue_bench), for a noisy shared machine.

    git worktree add /tmp/before <commit> && ln -s $PWD/.venv /tmp/before/.venv
    .venv/bin/python bench/queue_ab.py --before /tmp/before --after . --rounds 6
    # the same code, gold_rate 0 against 0.1 (issue 13): --before defaults to --after
    .venv/bin/python bench/queue_ab.py --after-args="--gold-rate 0.1" --rounds 6 -- \
        --items 20k --annotators 1,32 --duration 10 --warmup 2 --gold-items 500

Runs `bench/queue_bench.py` of each checkout in turn (before, after, before, after, ...), --rounds times each,
with the same arguments, so that load from other processes falls on both alike. Writes every run to --out (JSON
lines: round, side, queue_bench's result) and prints one JSON line: per concurrency level and figure, the median
and range of each side's rounds, the median of the paired differences (after - before, round by round) and in
how many rounds after was lower. Compare rounds within one run of this script only.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

FIGURES = [
    ("annotations_per_s", None),
    ("server_db_cpu_ms_per_item", None),
    ("server_cpu_ms_per_item", None),
    ("db_cpu_ms_per_item", None),
    ("client_cpu_ms_per_item", None),
    ("next_ms", "p99"),
    ("submit_ms", "p99"),
    ("gold_served", None),
]


def run_once(checkout: Path, bench_args: list[str]) -> dict:
    """One queue_bench run of the checkout; its result (the last line of its stdout)."""
    out = subprocess.run(
        [str(checkout / ".venv" / "bin" / "python"), "bench/queue_bench.py", *bench_args],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(rows: list[dict]) -> dict:
    runs: dict[tuple[int, str], dict[int, dict]] = {}
    for row in rows:
        for run in row["result"]["runs"]:
            runs.setdefault((run["annotators"], row["side"]), {})[row["round"]] = run
    summary: dict[str, dict] = {}
    for level in sorted({annotators for annotators, _ in runs}):
        before, after = runs.get((level, "before"), {}), runs.get((level, "after"), {})
        rounds = sorted(set(before) & set(after))
        figures: dict[str, dict] = {}
        for key, sub in FIGURES:

            def value(run: dict, key: str = key, sub: str | None = sub) -> float:
                return run[key][sub] if sub else run[key]

            b = [value(before[r]) for r in rounds]
            a = [value(after[r]) for r in rounds]
            diffs = [y - x for x, y in zip(b, a, strict=True)]
            figures[f"{key}.{sub}" if sub else key] = {
                "before_median": statistics.median(b),
                "before_range": [min(b), max(b)],
                "after_median": statistics.median(a),
                "after_range": [min(a), max(a)],
                "median_paired_diff": round(statistics.median(diffs), 3),
                "rounds_lower_after": sum(d < 0 for d in diffs),
            }
        errors = {
            side: {
                "errors_5xx": sum(r["errors_5xx"] for r in runs.get((level, side), {}).values()),
                "conflicts_409": sum(r["conflicts_409"] for r in runs.get((level, side), {}).values()),
                "duplicates": sum(
                    r["labeled_2plus"] + r["served_to_2plus"] for r in runs.get((level, side), {}).values()
                ),
            }
            for side in ("before", "after")
        }
        summary[str(level)] = {"rounds": len(rounds), "figures": figures, "errors": errors}
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, help="checkout of the baseline (with .venv); default: --after")
    ap.add_argument("--after", type=Path, default=Path("."), help="checkout of the change (with .venv)")
    ap.add_argument("--before-args", default="", help="queue_bench arguments for the before side only")
    ap.add_argument("--after-args", default="", help="queue_bench arguments for the after side only")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--out", type=Path, default=Path("bench/results/queue_ab.jsonl"))
    ap.add_argument("--summarize", action="store_true", help="only summarize an existing --out file")
    ap.add_argument("bench_args", nargs="*", default=["--items", "20k", "--annotators", "1,8,32", "--duration", "10"])
    args = ap.parse_args()
    sides = {
        "before": (args.before or args.after, shlex.split(args.before_args)),
        "after": (args.after, shlex.split(args.after_args)),
    }
    if not args.summarize:
        args.out.write_text("")
        for round_ in range(1, args.rounds + 1):
            for side, (checkout, extra) in sides.items():
                print(f"round {round_}: {side}", file=sys.stderr, flush=True)
                result = run_once(checkout.resolve(), [*args.bench_args, *extra])
                with args.out.open("a") as f:
                    f.write(
                        json.dumps(
                            {"round": round_, "side": side, "args": [*args.bench_args, *extra], "result": result}
                        )
                        + "\n"
                    )
    rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    print(json.dumps({"bench": "queue_ab", "levels": summarize(rows)}))


if __name__ == "__main__":
    main()
