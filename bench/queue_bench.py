"""The expert's loop under load: GET /api/projects/{id}/next -> POST /api/items/{id}/annotations.

    .venv/bin/python bench/queue_bench.py                                   # 100k and 1M items; 1, 8, 32 annotators
    .venv/bin/python bench/queue_bench.py --items 10k --duration 10         # a quick run

For each pool size, a project (overlap k=1, default sampling) is seeded through the import API,
then its item table is VACUUM ANALYZE'd (this machine's PostgreSQL runs with autovacuum off; production's
autovacuum would analyze after a bulk load; --no-analyze to skip) and the database CHECKPOINTed (so that the
seeding's writes are not counted as the loop's database CPU). The annotation tables are left unanalyzed, as a
fresh install has them until autovacuum sees 50 rows: analyzed while empty, with autovacuum off here, their
statistics would claim 0 rows for the whole run, and the prepared statements' generic plans (cached per
connection) would scan them whole on every submit. Then for each concurrency level, that many
distinct annotators (one keep-alive connection and one thread each, spread over several client
processes) label as fast as they can (closed loop, no think time) for --duration seconds after a
--warmup. Every submit carries a fresh Idempotency-Key.

Prints one JSON line: per pool size and concurrency, latency percentiles (ms) of next and submit,
annotations/s, 409s / 5xx / other errors, duplicates (items served to or annotated by more than
one annotator, counted by the clients and, for annotations, in the database), and CPU ms per
labeled item of the server (the web server's main process + workers), the database (our backends + PostgreSQL's
background processes) and the client.
Targets: next p99 <= 10 ms with 1 annotator; 32 annotators >= 300 annotations/s with p99 <= 100 ms
and 0 duplicates; <= 5 ms server + DB CPU per labeled item.

Gold (issue 13): `--gold-rate 0.1 --gold-items 500` creates the project with that gold_rate and makes the last
--gold-items items of the pool gold (is_gold, approved, a gold FinalLabel, written by SQL after the import, the
state the gold import leaves). Gold items are answered by every annotator once, so they are left out of the
duplicate counts; `gold_served` counts the gold items served in the window. Labeled items include gold answers.
The partial index `item_gold (project_id, id) WHERE is_gold` that the gold statement needs on a project with many
approved items is in migration 0011; `--gold-index` (creating it if missing) is kept for checkouts before it.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness
from _harness import (
    LABELS,
    App,
    CpuMeter,
    Http,
    emit,
    log,
    machine,
    new_key,
    parse_sizes,
    percentiles,
    web_figures,
    write_jsonl,
)

# the seeded table: VACUUM ANALYZE'd after seeding (see above for why only this one)
ANALYZED = "annotation_item"

# ------------------------------------------------------------------ client side (child processes)


def _annotator(port: int, project_id: int, token: str, t_start: float, t_end: float, out: dict) -> None:
    http = Http(port, token, timeout=30)
    rng = random.Random(token)
    next_lat, submit_lat = [], []
    served, labeled = [], []
    statuses: collections.Counter = collections.Counter()
    in_window = 0
    exhausted = False
    try:
        while time.time() < t_end:
            w0, p0 = time.time(), time.perf_counter()
            try:
                st, body = http.request("GET", f"/api/projects/{project_id}/next")
            except OSError as e:
                statuses[f"next:{type(e).__name__}"] += 1
                http.close()
                time.sleep(0.05)
                continue
            dt = time.perf_counter() - p0
            if w0 >= t_start and w0 + dt <= t_end:
                next_lat.append(dt)
            statuses[f"next:{st}"] += 1
            if st == 204:
                exhausted = True
                break
            if st != 200:
                time.sleep(0.05)
                continue
            item_id = json.loads(body)["id"]
            served.append(item_id)
            w1, p1 = time.time(), time.perf_counter()
            try:
                st, body = http.request(
                    "POST",
                    f"/api/items/{item_id}/annotations",
                    {"value": {"label": rng.choice(LABELS)}, "lead_time_ms": 1000},
                    headers={"Idempotency-Key": new_key()},
                )
            except OSError as e:
                statuses[f"submit:{type(e).__name__}"] += 1
                http.close()
                continue
            dt = time.perf_counter() - p1
            inside = w1 >= t_start and w1 + dt <= t_end
            if inside:
                submit_lat.append(dt)
            statuses[f"submit:{st}"] += 1
            if st == 201:
                labeled.append(item_id)
                in_window += inside
    finally:
        http.close()
    out.update(
        next=next_lat,
        submit=submit_lat,
        served=served,
        labeled=labeled,
        statuses=statuses,
        in_window=in_window,
        exhausted=exhausted,
    )


def _client_process(port: int, project_id: int, tokens: list[str], t_start: float, t_end: float, q) -> None:
    _harness._LIVE.clear()  # the parent's App is not ours to close
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    results = [dict(user=i) for i in range(len(tokens))]
    threads = [
        threading.Thread(target=_annotator, args=(port, project_id, tok, t_start, t_end, results[i]), daemon=True)
        for i, tok in enumerate(tokens)
    ]
    for t in threads:
        t.start()
    time.sleep(max(0.0, t_start - time.time()))
    c0 = time.process_time()
    time.sleep(max(0.0, t_end - time.time()))
    c1 = time.process_time()
    for t in threads:
        t.join(timeout=60)
    q.put({"cpu_s": c1 - c0, "annotators": [dict(r, statuses=dict(r.get("statuses", {}))) for r in results]})


# ------------------------------------------------------------------ one load run


def run_load(
    app: App,
    project_id: int,
    tokens: list[str],
    duration: float,
    warmup: float,
    procs: int,
    gold: frozenset[int] = frozenset(),
) -> dict:
    """One closed-loop window; `gold`: the ids of gold items (served to every annotator by design: left out of
    the duplicate counts, counted as gold_served)."""
    n = len(tokens)
    procs = max(1, min(procs, n))
    t_start = time.time() + 1.0 + warmup  # 1 s to start the processes, then the warm-up
    t_end = t_start + duration
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    groups = [tokens[i::procs] for i in range(procs)]
    children = [
        ctx.Process(target=_client_process, args=(app.port, project_id, g, t_start, t_end, q), daemon=True)
        for g in groups
    ]
    meter = CpuMeter(app)
    for c in children:
        c.start()
    done = False
    try:
        time.sleep(max(0.0, t_start - time.time()))
        before = meter.sample()
        time.sleep(max(0.0, t_end - time.time()))
        after = meter.sample()
        parts = [q.get(timeout=120) for _ in children]
        done = True
    finally:
        for c in children:
            if done:
                c.join(timeout=10)
            if c.is_alive():  # interrupted (^C, SIGTERM, an error): stop the load at once
                c.terminate()
                c.join(5)
    app.check_alive()
    cpu = CpuMeter.delta(before, after)
    anns = [a for p in parts for a in p["annotators"]]
    next_lat = [x for a in anns for x in a.get("next", [])]
    submit_lat = [x for a in anns for x in a.get("submit", [])]
    statuses: collections.Counter = collections.Counter()
    for a in anns:
        statuses.update(a.get("statuses", {}))
    labeled_window = sum(a.get("in_window", 0) for a in anns)
    # duplicates seen by the clients: an item served to / annotated by more than one annotator
    served_by: dict[int, set] = collections.defaultdict(set)
    labeled_by: collections.Counter = collections.Counter()
    gold_served = 0
    for i, a in enumerate(anns):
        for item in a.get("served", []):
            if item in gold:
                gold_served += 1
                continue
            served_by[item].add(i)
        labeled_by.update(item for item in a.get("labeled", []) if item not in gold)
    client_cpu = sum(p["cpu_s"] for p in parts)

    def per_item(seconds: float) -> float | None:
        return round(1000 * seconds / labeled_window, 3) if labeled_window else None

    errors_5xx = sum(v for k, v in statuses.items() if k.split(":")[1].startswith("5"))
    conflicts = sum(v for k, v in statuses.items() if k.endswith(":409"))
    other = sum(
        v
        for k, v in statuses.items()
        if k.split(":")[1] not in ("200", "201", "204", "409") and not k.split(":")[1].startswith("5")
    )
    return {
        "annotators": n,
        "client_procs": procs,
        "seconds": duration,
        "labeled": labeled_window,
        "annotations_per_s": round(labeled_window / duration, 1),
        "next_ms": percentiles(next_lat),
        "submit_ms": percentiles(submit_lat),
        "conflicts_409": conflicts,
        "errors_5xx": errors_5xx,
        "errors_other": other,
        "served_to_2plus": sum(1 for s in served_by.values() if len(s) > 1),
        "gold_served": gold_served,
        "labeled_2plus": sum(1 for c in labeled_by.values() if c > 1),
        "exhausted": any(a.get("exhausted") for a in anns),
        "server_cpu_ms_per_item": per_item(cpu["server_cpu_s"]),
        "db_cpu_ms_per_item": per_item(cpu["db_cpu_s"]),
        "server_db_cpu_ms_per_item": per_item(cpu["server_cpu_s"] + cpu["db_cpu_s"]),
        "client_cpu_ms_per_item": per_item(client_cpu),
        "cpu_s": {
            "server": cpu["server_cpu_s"],
            "db": cpu["db_cpu_s"],
            "db_all": cpu["db_all_cpu_s"],
            "client": round(client_cpu, 2),
            "worker": cpu["worker_cpu_s"],
        },
        "statuses": dict(sorted(statuses.items())),
    }


def db_duplicates(app: App, project_id: int) -> dict:
    """From the database: items of the project with more than one annotation (k=1; gold items, answered by every
    annotator, left out), and the totals."""
    row = app.sql(
        "SELECT count(*) FILTER (WHERE n > 1 AND NOT gold), coalesce(sum(n), 0), count(*) FROM ("
        " SELECT a.item_id, count(*) AS n, bool_or(i.is_gold) AS gold FROM annotation_annotation a"
        f" JOIN annotation_item i ON i.id = a.item_id WHERE i.project_id = {int(project_id)} GROUP BY a.item_id) t"
    )
    dup, anns, items = (int(x) for x in row.split("|"))
    finals = int(
        app.sql(
            f"SELECT count(*) FROM annotation_finallabel f JOIN annotation_item i ON i.id = f.item_id "
            f"WHERE i.project_id = {int(project_id)}"
        )
    )
    return {"items_with_2plus_annotations": dup, "annotations": anns, "annotated_items": items, "final_labels": finals}


def make_gold(app: App, project_id: int, n: int) -> frozenset[int]:
    """The last n items of the project become gold items (approved, a gold FinalLabel), as the gold import
    leaves them; their ids."""
    if n <= 0:
        return frozenset()
    labels = "ARRAY[" + ", ".join(f"'{label}'" for label in LABELS) + "]"
    rows = app.sql(
        f"WITH g AS (UPDATE annotation_item SET is_gold = true, status = 'approved' WHERE id IN ("
        f" SELECT id FROM annotation_item WHERE project_id = {int(project_id)} ORDER BY id DESC LIMIT {int(n)})"
        " RETURNING id),"
        " f AS (INSERT INTO annotation_finallabel (item_id, value, source, created_at, updated_at)"
        f" SELECT id, jsonb_build_object('label', ({labels})[1 + id % {len(LABELS)}]), 'gold', now(), now() FROM g)"
        " SELECT string_agg(id::text, ',') FROM g"
    )
    return frozenset(int(x) for x in rows.split(","))


# ------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", default="100k,1M", help="pool sizes, e.g. 10k or 100k,1M")
    ap.add_argument("--annotators", default="1,8,32", help="concurrency levels")
    ap.add_argument("--duration", type=float, default=20, help="measured seconds per level")
    ap.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each level")
    ap.add_argument("--client-procs", type=int, default=4, help="client processes (at most one per annotator)")
    ap.add_argument("--web-workers", type=int, default=2)
    ap.add_argument("--web-threads", type=int, default=2)
    ap.add_argument("--no-analyze", action="store_true", help="skip VACUUM ANALYZE after seeding")
    ap.add_argument("--gold-rate", type=float, default=0.0, help="the project's gold_rate (issue 13)")
    ap.add_argument("--gold-items", type=int, default=0, help="how many of the pool's items are gold")
    ap.add_argument("--gold-index", action="store_true", help="create the partial index item_gold if missing (migration 0011 has it)")
    args = ap.parse_args()
    sizes = parse_sizes(args.items)
    levels = [int(x) for x in args.annotators.split(",")]
    if args.duration > 600 or args.warmup > 60:
        raise SystemExit("--duration is at most 600 s and --warmup at most 60 s")
    out: dict = {
        "bench": "queue",
        "machine": machine(),
        "web": web_figures(args.web_workers, args.web_threads),
        "gold": {"rate": args.gold_rate, "items": args.gold_items, "index": args.gold_index},
        "runs": [],
    }
    # data files live in the App's temp dir: removed with it, even by the reaper after a SIGKILL
    with App(workers=args.web_workers, threads=args.web_threads) as app:
        tmp = app.tmp
        admin = app.admin()
        if args.gold_index:
            app.sql("CREATE INDEX IF NOT EXISTS item_gold ON annotation_item (project_id, id) WHERE is_gold")
        for size in sizes:
            project_id = app.create_project(admin, f"queue-bench-{size}", gold_rate=args.gold_rate)
            file = Path(tmp) / f"items-{size}.jsonl"
            write_jsonl(file, size)
            res = app.import_file(admin, project_id, file)
            file.unlink()
            log(f"seeded {size} items in {res['total_s']:.1f} s")
            gold = make_gold(app, project_id, args.gold_items)
            if not args.no_analyze:
                t0 = time.time()
                app.sql(f"VACUUM ANALYZE {ANALYZED}")
                log(f"VACUUM ANALYZE in {time.time() - t0:.1f} s")
            # write out the seeding's dirty pages now, or a checkpoint during the first levels charges the
            # import's writes to the labeling loop's database CPU
            t0 = time.time()
            app.sql("CHECKPOINT")
            log(f"CHECKPOINT in {time.time() - t0:.1f} s")
            tokens = app.annotators(admin, project_id, max(levels), prefix=f"q{size}_")
            for n in levels:
                log(f"{size} items, {n} annotator(s): {args.warmup:.0f} s warm-up + {args.duration:.0f} s")
                r = run_load(app, project_id, tokens[:n], args.duration, args.warmup, args.client_procs, gold=gold)
                r["items"] = size
                log(
                    f"  {r['annotations_per_s']}/s, next {r['next_ms']}, submit {r['submit_ms']}, "
                    f"server+db {r['server_db_cpu_ms_per_item']} ms/item, 409 {r['conflicts_409']}, "
                    f"5xx {r['errors_5xx']}, dup {r['labeled_2plus']}/{r['served_to_2plus']}, gold {r['gold_served']}"
                )
                out["runs"].append(r)
            out.setdefault("db_check", {})[str(size)] = db_duplicates(app, project_id)
    runs = out["runs"]
    one = [r for r in runs if r["annotators"] == 1]
    many = [r for r in runs if r["annotators"] == 32]
    out["targets"] = {
        "next_p99_le_10ms_1_annotator": all((r["next_ms"]["p99"] or 1e9) <= 10 for r in one) if one else None,
        "32_ge_300_per_s": all(r["annotations_per_s"] >= 300 for r in many) if many else None,
        "32_p99_le_100ms": all(max(r["next_ms"]["p99"] or 1e9, r["submit_ms"]["p99"] or 1e9) <= 100 for r in many)
        if many
        else None,
        "no_duplicates": all(r["labeled_2plus"] == 0 and r["served_to_2plus"] == 0 for r in runs)
        and all(v["items_with_2plus_annotations"] == 0 for v in out.get("db_check", {}).values()),
        "le_5ms_cpu_per_item": all((r["server_db_cpu_ms_per_item"] or 1e9) <= 5 for r in runs),
    }
    emit(out)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
