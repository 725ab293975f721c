"""Interleaved A/B of two web server configurations on one database, for a machine shared with other work.

    .venv/bin/python bench/server_ab.py                                    # granian 2x2 vs granian 2x8
    .venv/bin/python bench/server_ab.py --a granian:2:2 --b gunicorn:2:2 --annotators 32 --rounds 8

Both servers run at once against the same database (one project of --items items, k=1). The labeling loop
of queue_bench (closed loop next -> submit, distinct annotators, no think time) runs for --duration seconds
against A, then against B, and so on for --rounds rounds each, so that load from other processes on the
machine falls on both alike. Prints one JSON line: per configuration, the totals over its rounds (labeled
items, annotations/s), the per-round figures (annotations/s, next and submit p99, errors) and the median of
the rounds' p99s. It reports no CPU per item: with two servers up, the per-group CPU figures came out
inconsistent (one server's ranged from 0 to 2.3 ms per item between rounds, unexplained), and the database
figure includes other databases' exited backends; use queue_bench, one server at a time, for CPU.
`--gold-rate`, `--gold-items` and `--gold-index` set up gold items as queue_bench does (issue 13); to A/B gold
itself (one server, gold_rate 0 against 0.1, with CPU per item) use queue_ab.py with --after-args.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import App, emit, free_port, log, machine, write_jsonl
from queue_bench import ANALYZED, make_gold, run_load


def parse_config(text: str) -> tuple[str, int, int]:
    server, workers, threads = text.split(":")
    if server not in ("granian", "gunicorn"):
        raise SystemExit(f"unknown server {server!r} (granian or gunicorn)")
    return server, int(workers), int(threads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", default="granian:2:2", help="server:workers:threads")
    ap.add_argument("--b", default="granian:2:8", help="server:workers:threads")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--annotators", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--client-procs", type=int, default=4)
    ap.add_argument("--gold-rate", type=float, default=0.0, help="the project's gold_rate (issue 13)")
    ap.add_argument("--gold-items", type=int, default=0, help="how many of the pool's items are gold")
    ap.add_argument("--gold-index", action="store_true", help="create the proposed partial index item_gold first")
    args = ap.parse_args()
    configs = {"a": parse_config(args.a), "b": parse_config(args.b)}

    server, workers, threads = configs["a"]
    app = App(workers=workers, threads=threads)
    app.server = server
    with app:
        admin = app.admin()
        # the second server: same command builder, another port, its own process group
        web_a, port_a = app.web, app.port
        server_b, workers_b, threads_b = configs["b"]
        app.server, app.web_workers, app.web_threads = server_b, workers_b, threads_b
        app.port = free_port()
        web_b, port_b = app.spawn("web_b", app.web_command()), app.port
        app.web = web_b
        app._wait_web()
        log(f"A {args.a} on :{port_a}, B {args.b} on :{port_b}")
        servers = {"a": (web_a, port_a), "b": (web_b, port_b)}

        if args.gold_index:
            app.sql("CREATE INDEX IF NOT EXISTS item_gold ON annotation_item (project_id, id) WHERE is_gold")
        project_id = app.create_project(admin, "server-ab", gold_rate=args.gold_rate)
        file = Path(app.tmp) / "items.jsonl"
        write_jsonl(file, args.items)
        app.import_file(admin, project_id, file)
        file.unlink()
        gold = make_gold(app, project_id, args.gold_items)
        app.sql(f"VACUUM ANALYZE {ANALYZED}")
        tokens = app.annotators(admin, project_id, args.annotators, prefix="ab_")

        runs: dict[str, list[dict]] = collections.defaultdict(list)
        for r in range(args.rounds):
            for name in ("a", "b") if r % 2 == 0 else ("b", "a"):
                app.web, app.port = servers[name]
                res = run_load(app, project_id, tokens, args.duration, args.warmup, args.client_procs, gold=gold)
                runs[name].append(res)
                log(
                    f"round {r + 1} {name} ({getattr(args, name)}): {res['annotations_per_s']}/s, "
                    f"p99 next {res['next_ms']['p99']} submit {res['submit_ms']['p99']}"
                )
        app.web = web_a

    out: dict = {"bench": "server_ab", "machine": machine(), "annotators": args.annotators, "configs": {}}
    for name, results in runs.items():
        labeled = sum(x["labeled"] for x in results)
        seconds = sum(x["seconds"] for x in results)
        out["configs"][name] = {
            "config": getattr(args, name),
            "labeled": labeled,
            "annotations_per_s": round(labeled / seconds, 1),
            "rounds": [
                {
                    "per_s": x["annotations_per_s"],
                    "next_p99": x["next_ms"]["p99"],
                    "submit_p99": x["submit_ms"]["p99"],
                    "errors": x["errors_5xx"] + x["errors_other"] + x["conflicts_409"],
                }
                for x in results
            ],
            "p99_median_of_rounds": {
                "next": sorted(x["next_ms"]["p99"] or 0 for x in results)[len(results) // 2],
                "submit": sorted(x["submit_ms"]["p99"] or 0 for x in results)[len(results) // 2],
            },
        }
    emit(out)


if __name__ == "__main__":
    main()
