"""Quality metrics at scale: GET /api/projects/{id}/metrics of a project with 1M items and 100k annotations.

    .venv/bin/python bench/dashboard.py                                  # 1M items, 50k items x 2 annotations
    .venv/bin/python bench/dashboard.py --items 50k --overlapped 5k      # a quick run

Builds, in its own database (tandem_bench_dashboard, dropped at the end), one classification project (4 labels,
overlap 2) through SQL (generate_series for the items, COPY for the rest; the overlap trigger is off while
loading, as for any bulk restore): --items items with three metadata fields of 3, 40 and 5,000 values
(`source`, `region`, `author`) and texts of 3 to 42 words; 50 annotators (a reviewer and a manager beside them,
three annotators paused) of unequal error rates (5 % to 27.5 %); --overlapped items labeled by two annotators
each, spread over the last 30 days, each answer carrying the suggestion the server served (the active version's
for the last 15 days, the previous one's before), with automation bias (30 % of wrong suggestions accepted);
agreement writes a consensus final label, a disagreement goes to review (70 % of them corrected by the
reviewer, 5 % of those corrections after a reject that took the rejected answer out of the count); --gold gold
items, each answered by about half the annotators; four model versions (zero-shot retired, three fine-tuned, the
last active, so that the stopping signal has its 3 successive pairs) with validation metrics and Predictions on the stopping signal's 1,000-item stop set plus
--predicted other items. Then VACUUM ANALYZE, as autovacuum would after a bulk load.

Measures (one web server as in Procfile: granian, 2 workers x 2 threads; no Celery worker, so nothing else
competes for the 2 cores):
- recompute: `metrics_compute(project, ALL)` in a fresh process (what a refresh Job runs), its wall time (the
  first one pays the imports of scipy, statsmodels, scikit-learn: a worker process pays them once), then again in
  the same process, and each section's own time measured once more by calling it alone (the profile of where the
  time goes); target < 60 s. The load average is recorded before and after: the machine may be shared.
- check: the beat's `metrics_check()` on this database (a refresh is queued; nothing runs it).
- HTTP, one keep-alive client, sequential requests (the cache emptied first):
  * whole project: the first request (computed on the request: cold) and --requests cached ones;
  * day ranges (1 day, 7 and 30 days, each day of the first week, open-ended): the first request of each (cold:
    computed on the request, then cached) and --requests cached ones cycling through them.
  Target: p99 < 1 s.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    ADMIN_PASS,
    ADMIN_USER,
    LABELS,
    PG,
    PY,
    ROOT,
    App,
    Http,
    emit,
    git_state,
    log,
    machine,
    parse_sizes,
    percentiles,
    web_figures,
)

DB = "tandem_bench_dashboard"
ANNOTATORS = 50
SEED = 13

# the recompute, in the web's own code, in a fresh process (as a refresh Job would run it)
RECOMPUTE = r"""
import json, os, sys, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from annotation.models import Project
from annotation.quality import agreement, annotators, model, slices, stopping
from annotation.quality.metrics import metrics_check, metrics_compute
from annotation.quality.window import ALL, Window
from datetime import UTC, datetime, timedelta
project = Project.objects.get(pk=int(sys.argv[1]))
today = datetime.now(UTC).date()
t0 = time.perf_counter()
payload = metrics_compute(project=project, window=ALL)
total = time.perf_counter() - t0
t0 = time.perf_counter()
metrics_compute(project=project, window=ALL)  # again, in a process that has imported the libraries
warm = time.perf_counter() - t0
sections = {}
for name, call in [
    ("agreement", lambda: agreement.agreement_section(project, ALL)),
    ("annotators", lambda: annotators.annotators_section(project, ALL)),
    ("throughput", lambda: annotators.throughput_section(project, ALL)),
    ("model", lambda: model.model_section(project)),
    ("live", lambda: model.live_section(project, ALL)),
    ("learning_curve", lambda: model.learning_curve_section(project)),
    ("slices", lambda: slices.slices_section(project, ALL)),
    ("stopping", lambda: stopping.stopping_section(project)),
]:
    t = time.perf_counter()
    call()
    sections[name] = round(time.perf_counter() - t, 3)
# the slices' parts: the project-wide one (computed with the whole project, reused by day ranges while fresh) and a
# day range's own work given it (its items' values by id, its alphas and bootstrap intervals)
t = time.perf_counter()
structure = slices.slice_structure(project)
slice_parts = {"slice_structure": round(time.perf_counter() - t, 3)}
for days in (1, 7, 30):
    window = Window(since=today - timedelta(days=days - 1), until=today)
    t = time.perf_counter()
    slices.slices_section(project, window, structure=structure)
    slice_parts[f"slices_{days}_days_given_it"] = round(time.perf_counter() - t, 3)
# a cold one-day range's computation in this process, each windowed section alone, then the whole computation
# (the whole-project row just computed is fresh: model, learning curve, stopping and the slices' project-wide
# part come from it)
day = Window(since=today, until=today)
range_sections = {}
for name, call in [
    ("agreement", lambda: agreement.agreement_section(project, day)),
    ("annotators", lambda: annotators.annotators_section(project, day)),
    ("throughput", lambda: annotators.throughput_section(project, day)),
    ("live", lambda: model.live_section(project, day)),
    ("slices", lambda: slices.slices_section(project, day, structure=structure)),
]:
    t = time.perf_counter()
    call()
    range_sections[name] = round(time.perf_counter() - t, 3)
t = time.perf_counter()
metrics_compute(project=project, window=day)
range_sections["metrics_compute"] = round(time.perf_counter() - t, 3)
t = time.perf_counter()
checked = metrics_check()
check_s = time.perf_counter() - t
print(json.dumps({
    "recompute_s": round(total, 3), "recompute_warm_process_s": round(warm, 3), "sections_s": sections, "slices_parts_s": slice_parts, "one_day_range_s": range_sections, "check_s": round(check_s, 4), "check": checked,
    "payload_bytes": len(json.dumps(payload)), "n_items_in_alpha": payload["agreement"]["n_items"],
    "annotators": len(payload["annotators"]), "pairs": len(payload["agreement"]["pairwise_cohen_kappa"]),
    "slices": {f: len(v["rows"]) for f, v in payload["slices"].items()},
    "stopping": payload["stopping"]["sentence"],
}))
"""


def psql_in(app: App, sql: str, data: str | None = None) -> str:
    """Run `sql` (several statements allowed, one session) in the bench database, feeding `data` to COPY."""
    cmd = ["psql", "-w", "-h", PG["host"], "-p", str(PG["port"]), "-U", PG["user"], "-d", app.db, "-v"]
    cmd += ["ON_ERROR_STOP=1", "-AtXq", "-c", "SET session_replication_role = replica", "-c", sql]
    res = subprocess.run(cmd, input=data, capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"psql failed ({sql[:80]}): {res.stderr.strip()[:500]}")
    return res.stdout.strip()


def copy(app: App, table: str, columns: list[str], rows: list[list], not_null: tuple[str, ...] = ()) -> None:
    """COPY rows in CSV, where an empty field is NULL except in the `not_null` columns (there: an empty string)."""
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    options = f", FORCE_NOT_NULL ({', '.join(not_null)})" if not_null else ""
    psql_in(app, f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv{options})", buf.getvalue())


def ts(dt: datetime) -> str:
    return dt.isoformat()


def build(app: App, project_id: int, args: argparse.Namespace, now: datetime) -> dict:
    rng = random.Random(SEED)
    t0 = time.perf_counter()
    # --- people: 50 annotators, a reviewer, a manager (the bench admin is staff and reads the metrics)
    psql_in(
        app,
        "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
        "is_active, date_joined) SELECT '!', false, u, '', '', '', false, true, now() FROM ("
        f"SELECT 'dash' || lpad(g::text, 2, '0') AS u FROM generate_series(1, {ANNOTATORS}) g "
        "UNION ALL SELECT 'dash_reviewer' UNION ALL SELECT 'dash_manager') n",
    )
    users = dict(
        line.split("|")[::-1]
        for line in psql_in(app, "SELECT id, username FROM auth_user WHERE username LIKE 'dash%'").splitlines()
    )
    annotators = [int(users[f"dash{g:02d}"]) for g in range(1, ANNOTATORS + 1)]
    reviewer = int(users["dash_reviewer"])
    paused = set(annotators[-3:])
    copy(
        app,
        "annotation_membership",
        ["user_id", "project_id", "role", "paused", "gold_since", "created_at"],
        [[u, project_id, "annotator", u in paused, "", ts(now - timedelta(days=40))] for u in annotators]
        + [[reviewer, project_id, "reviewer", False, "", ts(now - timedelta(days=40))]]
        + [[int(users["dash_manager"]), project_id, "manager", False, "", ts(now - timedelta(days=40))]],
    )
    # --- items: generate_series, metadata of 3, 40 and 5,000 values, texts of 3 to 42 words
    psql_in(
        app,
        "INSERT INTO annotation_item (project_id, external_id, data, status, priority, is_gold, rejections, "
        "adjudication, annotation_count, lease_count, created_at) "
        f"SELECT {project_id}, 'i' || g, jsonb_build_object("
        "'text', 'item ' || g || ' ' || repeat('word ', 1 + g % 40) || 'end', "
        "'source', (ARRAY['news', 'blog', 'forum'])[1 + g % 3], "
        "'region', 'r' || (g * 7 % 40), "
        "'author', 'a' || ((g::bigint * 2654435761) % 5000)), "
        "'open', random(), false, 0, false, 0, 0, "
        f"'{ts(now - timedelta(days=31))}'::timestamptz FROM generate_series(1, {args.items}) g",
    )
    base = int(psql_in(app, f"SELECT min(id) FROM annotation_item WHERE project_id = {project_id}"))
    log(f"people and {args.items:,} items in {time.perf_counter() - t0:.1f} s")

    def truth(g: int) -> str:
        return LABELS[(g * 31) % len(LABELS)]

    def error_rate(u: int) -> float:
        return 0.05 + 0.025 * (annotators.index(u) % 10)

    def other(label: str) -> str:
        return rng.choice([x for x in LABELS if x != label])

    def suggestion(version: int, correct: float, true: str) -> dict:
        label = true if rng.random() < correct else other(true)
        kind = "fine_tuned" if version > 1 else "zero_shot"
        return {"model_version": version, "kind": kind, "value": {"label": label}, "confidence": round(rng.random(), 3)}

    def answer(u: int, true: str, sug: dict) -> dict:
        suggested = sug["value"]["label"]
        if suggested != true and rng.random() < 0.3:  # automation bias: a wrong suggestion accepted
            return {"label": suggested}
        return {"label": other(true) if rng.random() < error_rate(u) else true}

    ann_cols = ["id", "item_id", "annotator_id", "value", "lead_time_ms", "accepted_suggestion", "suggestion"]
    ann_cols += ["counts", "history", "created_at", "updated_at"]
    anns: list[list] = []
    finals: list[list] = []
    reviews: list[list] = []
    item_updates: list[list] = []  # id, status, annotation_count
    next_ann = 1

    def add_answer(item_id: int, u: int, value: dict, sug: dict, at: datetime, counts: bool = True) -> int:
        nonlocal next_ann
        aid = next_ann
        next_ann += 1
        accepted = value == sug["value"]
        anns.append(
            [
                aid,
                item_id,
                u,
                json.dumps(value),
                rng.randint(800, 30000),
                accepted,
                json.dumps(sug),
                counts,
                "[]",
                ts(at),
                ts(at),
            ]
        )
        return aid

    # --- overlap 2 on the first --overlapped items
    for g in range(1, args.overlapped + 1):
        item_id = base + g - 1
        true = truth(g)
        first = annotators[g % ANNOTATORS]
        second = annotators[(g % ANNOTATORS + 1 + (g // ANNOTATORS) % (ANNOTATORS - 1)) % ANNOTATORS]
        at = now - timedelta(days=30 * rng.random())
        version = 4 if at > now - timedelta(days=15) else 3
        sug = suggestion(version, 0.88 if version == 4 else 0.85, true)
        v1, v2 = answer(first, true, sug), answer(second, true, sug)
        a1 = add_answer(item_id, first, v1, sug, at)
        at2 = at + timedelta(minutes=rng.randint(1, 600))
        a2 = add_answer(item_id, second, v2, sug, at2)
        if v1 == v2:
            finals.append([item_id, json.dumps(v1), "consensus", ts(at2), ts(at2)])
            item_updates.append([item_id, "approved", 2])
        elif rng.random() < 0.7:
            reviewed = at2 + timedelta(hours=rng.randint(1, 48))
            if rng.random() < 0.05:  # rejected first: that answer no longer counts
                reviews.append([a2, reviewer, "reject", "", "wrong label", ts(reviewed)])
                anns[-1][7] = False
            reviews.append([a1, reviewer, "correct", json.dumps({"label": true}), "", ts(reviewed)])
            finals.append([item_id, json.dumps({"label": true}), "review", ts(reviewed), ts(reviewed)])
            item_updates.append([item_id, "approved", 2 if anns[-1][7] else 1])
        else:
            item_updates.append([item_id, "in_review", 2])
    # --- gold items, each answered by about half the annotators
    for j in range(args.gold):
        g = args.overlapped + 1 + j
        item_id = base + g - 1
        true = truth(g)
        gold_at = ts(now - timedelta(days=31))
        finals.append([item_id, json.dumps({"label": true}), "gold", gold_at, gold_at])
        for u in annotators:
            if rng.random() < 0.5:
                at = now - timedelta(days=30 * rng.random())
                sug = suggestion(4 if at > now - timedelta(days=15) else 3, 0.85, true)
                add_answer(item_id, u, answer(u, true, sug), sug, at)
    t1 = time.perf_counter()
    copy(app, "annotation_annotation", ann_cols, anns)
    copy(app, "annotation_finallabel", ["item_id", "value", "source", "created_at", "updated_at"], finals)
    copy(
        app,
        "annotation_review",
        ["annotation_id", "reviewer_id", "verdict", "corrected_value", "comment", "created_at"],
        reviews,
        not_null=("comment",),
    )
    psql_in(app, "CREATE TABLE bench_item_updates (id bigint, status text, n int)")
    copy(app, "bench_item_updates", ["id", "status", "n"], item_updates)
    psql_in(
        app,
        "UPDATE annotation_item i SET status = u.status, annotation_count = u.n FROM bench_item_updates u "
        f"WHERE i.id = u.id; DROP TABLE bench_item_updates; UPDATE annotation_item SET is_gold = true, "
        f"status = 'approved' WHERE id BETWEEN {base + args.overlapped} AND {base + args.overlapped + args.gold - 1}; "
        "SELECT setval(pg_get_serial_sequence('annotation_annotation', 'id'), (SELECT max(id) FROM "
        "annotation_annotation))",
    )
    log(
        f"{len(anns):,} annotations, {len(finals):,} final labels, {len(reviews):,} reviews in {time.perf_counter() - t1:.1f} s"
    )
    # --- four model versions with validation metrics, Predictions on the stop set and a sample
    t2 = time.perf_counter()
    labels = json.dumps([{"name": x, "description": ""} for x in LABELS])
    versions = []
    for version, kind, status, acc in [
        (1, "zero_shot", "retired", 0.6),
        (2, "fine_tuned", "retired", 0.8),
        (3, "fine_tuned", "retired", 0.85),
        (4, "fine_tuned", "active", 0.88),
    ]:
        reliability = [
            {"bin": b, "confidence": (b + 0.5) / 10, "accuracy": min(1.0, (b + 0.5) / 10 + 0.05), "n": 40}
            for b in range(10)
        ]
        metrics = {
            "accuracy": acc,
            "macro_f1": acc - 0.02,
            "ece": 0.05,
            "per_label_f1": {x: acc - 0.01 * i for i, x in enumerate(LABELS)},
            "confusion_matrix": [[100 if i == j else 5 for j in range(len(LABELS))] for i in range(len(LABELS))],
            "reliability": reliability,
            "n_train": 1000 * version if kind == "fine_tuned" else None,
        }
        created = now - timedelta(days=75 - 15 * version)
        versions.append(
            [
                project_id,
                version,
                kind,
                "bench",
                labels,
                "classification",
                "",
                "",
                json.dumps(metrics),
                status,
                ts(created),
                ts(created),
            ]
        )
    copy(
        app,
        "modelsvc_modelversion",
        [
            "project_id",
            "version",
            "kind",
            "base_model",
            "labels",
            "task_type",
            "artifact_path",
            "sha256",
            "metrics",
            "status",
            "created_at",
            "activated_at",
        ],
        versions,
        not_null=("artifact_path", "sha256"),
    )
    version_ids = dict(
        tuple(map(int, line.split("|")))
        for line in psql_in(
            app, f"SELECT version, id FROM modelsvc_modelversion WHERE project_id = {project_id}"
        ).splitlines()
    )
    stop_set = [
        int(x)
        for x in psql_in(
            app,
            f"SELECT id FROM annotation_item WHERE project_id = {project_id} AND NOT is_gold "
            "ORDER BY sha256(convert_to(project_id::text || ':' || id::text, 'UTF8')) LIMIT 1000",
        ).split()
    ]
    predicted = sorted(set(stop_set) | {base + rng.randrange(args.items) for _ in range(args.predicted)})
    preds = []
    for version, vid in sorted(version_ids.items()):
        correct = {1: 0.6, 2: 0.8, 3: 0.85, 4: 0.88}[version]
        for item_id in predicted:
            true = truth(item_id - base + 1)
            label = true if rng.random() < correct else other(true)
            p = round(0.4 + 0.6 * rng.random(), 4)
            probs = {x: (p if x == label else round((1 - p) / (len(LABELS) - 1), 4)) for x in LABELS}
            preds.append([item_id, vid, json.dumps({"label": label}), json.dumps(probs), 1 - p, p, 1.0, 1 - p, ts(now)])
    copy(
        app,
        "modelsvc_prediction",
        [
            "item_id",
            "model_version_id",
            "value",
            "probabilities",
            "least_confidence",
            "margin",
            "entropy",
            "uncertainty",
            "created_at",
        ],
        preds,
    )
    log(f"{len(version_ids)} versions, {len(preds):,} predictions in {time.perf_counter() - t2:.1f} s")
    t3 = time.perf_counter()
    subprocess.run(
        [
            "psql",
            "-w",
            "-h",
            PG["host"],
            "-p",
            str(PG["port"]),
            "-U",
            PG["user"],
            "-d",
            app.db,
            "-qc",
            "VACUUM ANALYZE",
        ],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    log(f"VACUUM ANALYZE in {time.perf_counter() - t3:.1f} s")
    return {
        "items": args.items,
        "annotations": len(anns),
        "overlapped_items": args.overlapped,
        "gold_items": args.gold,
        "gold_answers": len(anns) - 2 * args.overlapped,
        "final_labels": len(finals),
        "reviews": len(reviews),
        "predictions": len(preds),
        "build_s": round(time.perf_counter() - t0, 1),
    }


def timed_get(api, path: str) -> tuple[float, int, int]:
    t = time.perf_counter()
    status, body = api.request("GET", path)
    elapsed = time.perf_counter() - t
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
    return elapsed, status, len(body)


def ms(values: list[float]) -> dict:
    return percentiles(values) | {"max": round(max(values) * 1000, 2)}  # ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", default="1M")
    parser.add_argument("--overlapped", default="50k", help="items labeled by 2 annotators each")
    parser.add_argument("--gold", type=int, default=200)
    parser.add_argument("--predicted", default="10k", help="items predicted by every version besides the stop set")
    parser.add_argument("--requests", type=int, default=300, help="cached requests per kind")
    args = parser.parse_args()
    args.items = parse_sizes(args.items)[0]
    args.overlapped = parse_sizes(args.overlapped)[0]
    args.predicted = parse_sizes(args.predicted)[0]
    if args.overlapped + args.gold > args.items:
        parser.error("--overlapped + --gold must not exceed --items")

    app = App(workers=2, threads=2, worker=False)
    app.db = DB
    figures: dict = {"bench": "dashboard", "git": git_state(), "machine": machine(), "web": web_figures(2, 2)}
    figures["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    with app:
        # a cold request computes on the request: a minute at 1M items on a busy machine, past Http's default timeout
        api = Http(app.port, app.token(ADMIN_USER, ADMIN_PASS), timeout=1800)
        project_id = app.create_project(api, "dashboard", labels=LABELS, annotations_per_item=2)
        now = datetime.now(UTC).replace(microsecond=0)
        figures["data"] = build(app, project_id, args, now)

        log("recompute (a fresh process, as a refresh Job)")
        res = subprocess.run(
            [str(PY), "-c", RECOMPUTE, str(project_id)],
            cwd=ROOT,
            env=app.env(),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if res.returncode != 0:
            raise RuntimeError(f"recompute failed: {res.stderr[-2000:]}")
        figures["recompute"] = json.loads(res.stdout.strip().splitlines()[-1])
        log(f"recompute {figures['recompute']['recompute_s']} s: {figures['recompute']['sections_s']}")

        app.sql(f"DELETE FROM annotation_metricscache WHERE project_id = {project_id}")
        path = f"/api/projects/{project_id}/metrics"
        cold_all, _, size = timed_get(api, path)
        cached_all = [timed_get(api, path)[0] for _ in range(args.requests)]
        today = now.date()
        ranges = [(today, today), (today - timedelta(days=6), today), (today - timedelta(days=29), today)]
        ranges += [(today - timedelta(days=d), today - timedelta(days=d)) for d in range(1, 8)]
        ranges += [(today - timedelta(days=14), None), (None, today - timedelta(days=15))]
        range_paths = []
        for since, until in ranges:
            query = "&".join(f"{k}={v.isoformat()}" for k, v in (("since", since), ("until", until)) if v is not None)
            range_paths.append(f"{path}?{query}")
        cold_ranges = [timed_get(api, p)[0] for p in range_paths]
        cached_ranges = [timed_get(api, range_paths[i % len(range_paths)])[0] for i in range(args.requests)]
        figures["http"] = {
            "whole_project": {
                "cold_first_request_ms": round(cold_all * 1000, 1),
                "cached": {"requests": len(cached_all), **ms(cached_all)},
                "response_bytes": size,
            },
            "day_ranges": {
                "ranges": len(range_paths),
                "cold_first_request_each": {"requests": len(cold_ranges), **ms(cold_ranges)},
                "cold_ms_by_range": {
                    p.split("?", 1)[1]: round(t * 1000, 1) for p, t in zip(range_paths, cold_ranges, strict=True)
                },
                "cached": {"requests": len(cached_ranges), **ms(cached_ranges)},
            },
        }
        recompute_s = figures["recompute"]["recompute_s"]
        p99 = max(figures["http"]["whole_project"]["cached"]["p99"], figures["http"]["day_ranges"]["cached"]["p99"])
        figures["targets"] = {
            "recompute_under_60_s": recompute_s < 60,
            "cached_p99_under_1_s": p99 < 1000,
            "cold_range_p99_under_1_s": figures["http"]["day_ranges"]["cold_first_request_each"]["p99"] < 1000,
        }
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    emit(figures)


if __name__ == "__main__":
    main()
