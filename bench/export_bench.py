"""Streamed export: GET /api/projects/{id}/export?format=jsonl|csv of a large project.

    .venv/bin/python bench/export_bench.py                          # 1M items, 2,000 of them labeled
    .venv/bin/python bench/export_bench.py --items 10k --labeled 200

The project is seeded through the import API (then VACUUM ANALYZE, as autovacuum would; this
machine's PostgreSQL runs with autovacuum off), and --labeled items are labeled through the API
(next -> submit, 8 annotators). Each export is read by a streaming client; before it, the peak RSS
(VmHWM) of every web server worker is reset (/proc/<pid>/clear_refs), so the figure is the export's own.

Prints one JSON line: per format, time to the response headers and to the first body byte, total
seconds, rows/s, bytes, rows (JSONL: lines; CSV: newline count, an upper bound), rows with a final
label (JSONL), the web server workers' RSS before and their peak during the export (max over workers),
and server / DB CPU seconds. Targets: first byte < 1 s, peak RSS < 300 MB at 1M rows.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
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
    reset_hwm,
    rss_kb,
    web_figures,
    write_jsonl,
)


def label_some(app: App, project_id: int, tokens: list[str], count: int, timeout: float = 900) -> int:
    """Label `count` items through the API (next -> submit), one thread per annotator."""
    done = [0]
    lock = threading.Lock()
    deadline = time.time() + timeout

    def work(i: int, token: str) -> None:
        http = Http(app.port, token)
        try:
            while time.time() < deadline:
                with lock:
                    if done[0] >= count:
                        return
                    done[0] += 1  # reserve one
                st, body = http.request("GET", f"/api/projects/{project_id}/next")
                if st != 200:
                    with lock:
                        done[0] -= 1
                    return
                import json

                item = json.loads(body)["id"]
                st, _ = http.request(
                    "POST",
                    f"/api/items/{item}/annotations",
                    {"value": {"label": LABELS[(item + i) % len(LABELS)]}},
                    headers={"Idempotency-Key": new_key()},
                )
                if st != 201:
                    with lock:
                        done[0] -= 1
        finally:
            http.close()

    threads = [threading.Thread(target=work, args=(i, t)) for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 60)
    return done[0]


def export_once(app: App, token: str, project_id: int, fmt: str, expect_rows: int) -> dict:
    workers = app.web_worker_pids()
    base_rss = {p: rss_kb(p) for p in workers}
    hwm_reset = all(reset_hwm(p) for p in workers)
    meter = CpuMeter(app)
    before = meter.sample()
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=300)
    t0 = time.perf_counter()
    conn.request(
        "GET",
        f"/api/projects/{project_id}/export?format={fmt}",
        headers={"Authorization": f"Token {token}", "Accept": "*/*"},
    )
    resp = conn.getresponse()
    t_headers = time.perf_counter() - t0
    if resp.status != 200:
        raise RuntimeError(f"export {fmt} answered {resp.status}: {resp.read(300)!r}")
    first = first_row = None
    header_lines = 1 if fmt == "csv" else 0
    size = lines = unlabeled = 0
    tail = b""
    needle = b'"final": null}'
    peak = {p: 0 for p in workers}
    while True:
        block = resp.read1(1 << 20)
        if not block:
            break
        if first is None:
            first = time.perf_counter() - t0
        size += len(block)
        lines += block.count(b"\n")
        if first_row is None and lines > header_lines:
            first_row = time.perf_counter() - t0
        if fmt == "jsonl":
            joined = tail + block
            unlabeled += joined.count(needle)
            # keep a short tail so a needle split across blocks is counted once (the needle ends a line)
            cut = joined.rfind(b"\n")
            tail = joined[cut + 1 :] if cut >= 0 else joined
            unlabeled -= tail.count(needle)
        for p in workers:  # sample as we go too, in case clear_refs is not allowed
            peak[p] = max(peak[p], rss_kb(p))
    if fmt == "jsonl" and tail:
        unlabeled += tail.count(needle)
    total = time.perf_counter() - t0
    conn.close()
    after = meter.sample(settle=0.5)
    cpu = CpuMeter.delta(before, after)
    hwm = {p: max(rss_kb(p, "VmHWM") if hwm_reset else 0, peak[p]) for p in workers}
    served_by = max(hwm, key=lambda p: hwm[p] - base_rss.get(p, 0)) if hwm else None
    rows = lines - header_lines
    out = {
        "format": fmt,
        "rows": rows,
        "bytes": size,
        "ttfb_headers_s": round(t_headers, 3),
        "first_byte_s": round(first or total, 3),
        "first_row_s": round(first_row or total, 3),  # the first data row (CSV: after the header)
        "seconds": round(total, 2),
        "rows_per_s": round(rows / total) if total else None,
        "mb_per_s": round(size / total / 1e6, 1) if total else None,
        "rss_before_mb": round(max(base_rss.values()) / 1024, 1) if base_rss else None,
        "peak_rss_mb": round(max(hwm.values()) / 1024, 1) if hwm else None,
        "peak_rss_serving_worker_mb": round(hwm[served_by] / 1024, 1) if served_by else None,
        "rss_before_serving_worker_mb": round(base_rss[served_by] / 1024, 1) if served_by else None,
        "hwm_reset": hwm_reset,
        "server_cpu_s": cpu["server_cpu_s"],
        "db_cpu_s": cpu["db_cpu_s"],
    }
    if fmt == "jsonl":
        out["rows_with_final"] = rows - unlabeled
    if rows < expect_rows:
        log(f"warning: {fmt} export has {rows} rows, expected {expect_rows}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", default="1M", help="project size(s), e.g. 10k or 100k,1M")
    ap.add_argument("--labeled", type=int, default=2000, help="items labeled through the API before exporting")
    ap.add_argument("--formats", default="jsonl,csv")
    ap.add_argument("--web-workers", type=int, default=2)
    ap.add_argument("--web-threads", type=int, default=2)
    ap.add_argument("--no-analyze", action="store_true", help="skip VACUUM ANALYZE after seeding")
    args = ap.parse_args()
    out: dict = {
        "bench": "export",
        "machine": machine(),
        "web": web_figures(args.web_workers, args.web_threads),
        "runs": [],
    }
    # data files live in the App's temp dir: removed with it, even by the reaper after a SIGKILL
    with App(workers=args.web_workers, threads=args.web_threads) as app:
        tmp = app.tmp
        admin = app.admin()
        for size in parse_sizes(args.items):
            project_id = app.create_project(admin, f"export-bench-{size}")
            file = Path(tmp) / f"items-{size}.jsonl"
            write_jsonl(file, size)
            res = app.import_file(admin, project_id, file)
            file.unlink()
            log(f"seeded {size} items in {res['total_s']:.1f} s")
            if not args.no_analyze:
                app.sql("VACUUM ANALYZE")
            labeled = 0
            if args.labeled:
                tokens = app.annotators(admin, project_id, 8, prefix=f"e{size}_")
                t0 = time.time()
                labeled = label_some(app, project_id, tokens, min(args.labeled, size))
                log(f"labeled {labeled} items in {time.time() - t0:.1f} s")
            for fmt in args.formats.split(","):
                r = export_once(app, admin.token, project_id, fmt, size)
                r.update(items=size, labeled=labeled)
                log(
                    f"{fmt}: {r['rows']} rows, {r['bytes'] / 1e6:.0f} MB in {r['seconds']} s, first byte "
                    f"{r['first_byte_s']} s (first row {r['first_row_s']} s), peak RSS {r['peak_rss_mb']} MB (before {r['rss_before_mb']} MB)"
                )
                out["runs"].append(r)
    runs = out["runs"]
    out["targets"] = {
        "first_byte_lt_1s": all(r["first_row_s"] < 1 for r in runs),
        "peak_rss_lt_300mb": all((r["peak_rss_mb"] or 0) < 300 for r in runs),
    }
    emit(out)


if __name__ == "__main__":
    main()
