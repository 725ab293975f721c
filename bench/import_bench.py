"""Import throughput: upload a JSONL file of N rows (streamed raw body, ?format=jsonl), wait for the
import Job, then import the same file again (every row a duplicate).

    .venv/bin/python bench/import_bench.py                 # 100k and 1M rows
    .venv/bin/python bench/import_bench.py --rows 10k      # a quick run

Prints one JSON line: per size, seconds from the POST to the Job `succeeded`, rows/s, the upload
time, and the CPU seconds of the Celery worker and PostgreSQL; the same for the re-import.
Target: 1M rows in < 60 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import App, CpuMeter, emit, log, machine, parse_sizes, write_jsonl


def one_import(app: App, api, project_id: int, file: Path, rows: int, meter: CpuMeter) -> dict:
    before = meter.sample()
    res = app.import_file(api, project_id, file)
    cpu = CpuMeter.delta(before, meter.sample(settle=1.5))
    result = res["job"].get("result") or {}
    total = res["total_s"]
    return {
        "rows": rows,
        "created": result.get("created"),
        "duplicates": result.get("duplicates"),
        "errors": result.get("error_count"),
        "seconds": round(total, 2),
        "rows_per_s": round(rows / total) if total else None,
        "upload_s": round(res["upload_s"], 2),
        "worker_cpu_s": cpu["worker_cpu_s"],
        "server_cpu_s": cpu["server_cpu_s"],
        "db_cpu_s": cpu["db_cpu_s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="100k,1M", help="comma-separated sizes, e.g. 10k or 100k,1M")
    ap.add_argument("--no-reimport", action="store_true", help="skip the duplicate re-import")
    ap.add_argument("--web-workers", type=int, default=2)
    ap.add_argument("--web-threads", type=int, default=2)
    args = ap.parse_args()
    sizes = parse_sizes(args.rows)
    out: dict = {"bench": "import", "machine": machine(), "runs": []}
    # data files live in the App's temp dir: removed with it, even by the reaper after a SIGKILL
    with App(workers=args.web_workers, threads=args.web_threads) as app:
        tmp = app.tmp
        api = app.admin()
        meter = CpuMeter(app)
        for n in sizes:
            file = Path(tmp) / f"items-{n}.jsonl"
            t0 = time.time()
            size = write_jsonl(file, n)
            log(f"{n} rows: {size / 1e6:.0f} MB written in {time.time() - t0:.1f} s")
            project_id = app.create_project(api, f"import-bench-{n}")
            run = one_import(app, api, project_id, file, n, meter)
            run["bytes"] = size
            log(f"{n} rows imported in {run['seconds']} s ({run['rows_per_s']} rows/s)")
            if run["created"] != n:
                raise SystemExit(f"expected {n} created, got {run['created']}")
            if not args.no_reimport:
                again = one_import(app, api, project_id, file, n, meter)
                log(f"re-import of {n}: {again['duplicates']} duplicates in {again['seconds']} s")
                if again["created"] != 0 or again["duplicates"] != n:
                    raise SystemExit(f"re-import: expected 0 created / {n} duplicates, got {again}")
                run["reimport"] = {
                    k: again[k] for k in ("created", "duplicates", "seconds", "rows_per_s", "worker_cpu_s", "db_cpu_s")
                }
            out["runs"].append(run)
            file.unlink()
    big = [r for r in out["runs"] if r["rows"] >= 1_000_000]
    if big:
        out["target_1M_under_60s"] = big[0]["seconds"] < 60
    emit(out)


if __name__ == "__main__":
    main()
