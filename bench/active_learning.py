"""Active learning through the product's own services, against Schröder et al. 2022's protocol.

    .venv/bin/python bench/active_learning.py --dataset trec --pool 2000           # 4 strategies x 3 seeds
    .venv/bin/python bench/active_learning.py --dataset cr --pool 2000             # binary: random + margin runs
    .venv/bin/python bench/active_learning.py --dataset trec --strategies margin --only-seeds 2 --resume
    .venv/bin/python bench/active_learning.py --dataset trec --queries 2 --seeds 1 --pool 300   # smoke run

For every (strategy, seed) a fresh project on a fresh PostgreSQL database is driven exactly as experts
and the model loop drive it: the pool is imported (annotation.services.importing.import_file); 25
stratified initial items are labeled with the gold label (annotation_submit); then 20 rounds of: a
training run (modelsvc.services.training.train_start: fixed validation reserve, fine-tune with warm start,
promotion if the candidate beats the active version on validation, then the pool re-scored by the
pre-label Job),
and 25 items served by `next` (item_next_for_annotator: the project's sampling = random, or uncertainty
with the strategy's measure, exploration 0) and answered with their gold labels. After each training
the active version's accuracy on the dataset's test split is one point of the learning curve.

Each run is a child process (`--run`) with its own database; its curve lands in --out/runs/, so
`--resume` keeps finished runs and `--only-seeds` splits the work between invocations (the summary of
an invocation covers its own seeds). With two classes, least confidence, margin and entropy are all
decreasing functions of p_max and rank the pool alike, so by default only margin runs and its runs are
reported for the other two; each margin run records, per round, whether their top 25 by the exact
scores would have been margin's batch (`--all-binary-strategies` runs them for real).

Strategies: random (sampling random), least_confidence, entropy, margin ("breaking ties"). Output:
the curves as CSV and a PNG plot in --out, and one JSON line: final accuracy and normalised AUC (the
trapezoid area over [25, 525] labels divided by the span, so the mean accuracy over the curve) per
strategy, mean and std over seeds, mean accuracy at 25/100/200/300/525 labels, with the paper's numbers
beside them (../shared/datasets/PAPER_TABLE.md).

Differences from the paper, on purpose: MiniLM-L6 (22M parameters) on CPU instead of BERT-large; the
product's training (word embeddings frozen, early stopping on the 10% validation reserve with
--patience 1, at most --epochs 10, lr 1e-4, batch 12, 64 tokens); `--pool` subsamples the pool to bound
the run time (the pre-label Job re-scores the whole pool after every promotion, as the product does).
Promotion is the product's default: higher validation accuracy, and on a tie (common with 3-50 validation
items) the lower validation log loss. Each run file keeps, per round, the promotion decision with both
versions' validation figures, the validation size, the temperature, and how many open items the active
version scores 0 or alike (`rounds`).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _harness import emit, log, machine, psql  # noqa: E402

DATASETS = Path(os.environ.get("TANDEM_DATASETS", ROOT.parent / "shared" / "datasets"))
STRATEGIES = ("random", "least_confidence", "entropy", "margin")
# Schröder et al. 2022, best BERT-large final accuracy after 525 labels (strategy), Tab. 5 (PAPER_TABLE.md)
PAPER = {
    "trec": {"final_accuracy": 0.968, "strategy": "CA", "note": "BT ranks best by AUC over the 5 datasets"},
    "subj": {"final_accuracy": 0.958, "strategy": "LC"},
    "cr": {"final_accuracy": 0.919, "strategy": "LC"},
    "mr": {"final_accuracy": 0.857, "strategy": "PE = BT"},
    "ag_news": {"final_accuracy": 0.904, "strategy": "BT"},
}


def load(dataset: str, pool_limit: int | None, seed: int) -> tuple[list[str], list[dict], list[dict]]:
    folder = DATASETS / dataset
    labels_meta = json.loads((folder / "labels.json").read_text())
    labels = labels_meta if isinstance(labels_meta, list) else labels_meta.get("names") or list(labels_meta)
    labels = [str(x["name"] if isinstance(x, dict) else x) for x in labels]

    def rows(name: str) -> list[dict]:
        with open(folder / name, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    if dataset == "ag_news":  # only a test split: carve pool and test out of it
        everything = rows("test.jsonl")
        random.Random(1003).shuffle(everything)
        test, pool = everything[:1000], everything[1000:]
    else:
        pool, test = rows("train.jsonl"), rows("test.jsonl")
    if pool_limit and len(pool) > pool_limit:
        pool = random.Random(seed).sample(pool, pool_limit)
    for r in pool + test:
        r["label"] = labels[int(r["label_id"])] if "label_id" in r else str(r["label"])
    return labels, pool, test


def stratified_initial(pool: list[dict], n: int, seed: int) -> list[int]:
    """Indices of n pool rows, per class in proportion (at least one each), seeded."""
    rng = random.Random(seed)
    by_class: dict[str, list[int]] = {}
    for i, r in enumerate(pool):
        by_class.setdefault(r["label"], []).append(i)
    quota = {c: max(1, round(n * len(ix) / len(pool))) for c, ix in by_class.items()}
    while sum(quota.values()) > n:
        quota[max(quota, key=quota.get)] -= 1
    while sum(quota.values()) < n:
        quota[max(by_class, key=lambda c: len(by_class[c]) / quota[c])] += 1
    picked = []
    for c, ix in by_class.items():
        picked += rng.sample(ix, min(quota[c], len(ix)))
    return picked


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population std; NaN (a round without a trained version) propagates instead of raising."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def auc(points: list[tuple[int, float]]) -> float:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    area = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))
    return area / (xs[-1] - xs[0]) if xs[-1] > xs[0] else ys[0]


def setup_django(db: str, model_dir: Path, args) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "TANDEM_VAR_DIR": str(model_dir.parent),
            "MODEL_DIR": str(model_dir),
            "TANDEM_MODEL_BACKEND": "hf",
            "TANDEM_PRELABEL_ON_IMPORT": "false",
            "TANDEM_CPU_THREADS": str(args.threads),
            "TANDEM_COLD_START_PICKS": "0",
            "TANDEM_EXPLAIN_HEAD": "0",
            "TANDEM_VALIDATION_FRACTION": "0.1",
            "TANDEM_TRAIN_MIN_LABELS": "5",
            "TANDEM_TRAIN_MAX_EPOCHS": str(args.epochs),
            "TANDEM_TRAIN_PATIENCE": str(args.patience),
            "TANDEM_TRAIN_BATCH_SIZE": "12",
            "TANDEM_TRAIN_LEARNING_RATE": f"{args.lr:.10f}",  # django-environ misreads 5e-05
            "TANDEM_TRAIN_MAX_LENGTH": str(args.max_length),
            "TANDEM_PRELABEL_CHUNK_SIZE": "1024",
            "TANDEM_PRELABEL_BATCH_SIZE": "64",
            "TANDEM_MODEL_RETENTION": "1",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    from config.celery import app

    app.conf.task_always_eager = True  # the model loop runs in this process, in order
    app.conf.task_eager_propagates = True
    call_command("migrate", verbosity=0)


def batch_by_measure(project, size: int) -> dict[str, list[int]]:
    """The `size` items the queue would serve next under each uncertainty measure: open items by the
    active version's exact score (its Prediction rows), highest first, ties by id (the queue's order
    with exploration 0)."""
    from annotation.models import Item
    from annotation.models.item import QUEUE_STATUSES
    from modelsvc.models import ModelVersion, Prediction

    active = ModelVersion.objects.get(project=project, status="active")
    scored = {
        row[0]: row[1:]
        for row in Prediction.objects.filter(model_version=active).values_list(
            "item_id", "least_confidence", "entropy", "margin"
        )
    }
    open_ids = Item.objects.filter(project=project, status__in=QUEUE_STATUSES).values_list("id", flat=True)
    return {
        measure: [i for _, i in sorted((-scored.get(i, (0.0, 0.0, 0.0))[k], i) for i in open_ids)[:size]]
        for k, measure in enumerate(("least_confidence", "entropy", "margin"))
    }


def open_scores(project, measure: str) -> dict[str, int]:
    """How the active version's exact scores of the open items spread under `measure`: how many open items
    it scored, how many of those score 0 (saturated), and how many distinct values there are (the rest tie
    and are served in id order)."""
    from annotation.models import Item
    from annotation.models.item import QUEUE_STATUSES
    from modelsvc.models import ModelVersion, Prediction

    active = ModelVersion.objects.get(project=project, status="active")
    open_ids = Item.objects.filter(project=project, status__in=QUEUE_STATUSES).values("id")
    values = list(Prediction.objects.filter(model_version=active, item_id__in=open_ids).values_list(measure, flat=True))
    return {"open": len(values), "zero": sum(1 for v in values if v == 0.0), "distinct": len(set(values))}


def run_one(
    dataset: str,
    labels,
    pool,
    test,
    strategy: str,
    seed: int,
    args,
    workdir: Path,
    binary_check: list | None = None,
    rounds: list | None = None,
) -> list[tuple[int, float]]:
    """One run; its learning curve. With `binary_check` (a margin run on two classes), every round
    appends whether least confidence and entropy would have served the very batch margin served.
    `rounds` gets one record per round: the training job's promotion decision, validation size and
    temperature, and how the open items' scores spread."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from annotation.models import Item
    from annotation.services.importing import import_file
    from annotation.services.projects import project_create
    from annotation.services.queue import item_next_for_annotator
    from annotation.services.submitting import annotation_submit
    from modelsvc.models import ModelVersion
    from modelsvc.services.training import evaluate_version, train_start

    user_model = get_user_model()
    owner = user_model.objects.create_user(username=f"owner-{strategy}-{seed}", password="x-" + secrets.token_hex(8))
    project = project_create(
        created_by=owner,
        name=f"AL {dataset} {strategy} seed {seed}",
        labels=[{"name": name} for name in labels],
        sampling="random" if strategy == "random" else "uncertainty",
        uncertainty_measure="margin" if strategy == "random" else strategy,
        exploration_rate=0.0,
        min_new_labels=10**9,
    )
    path = workdir / f"pool-{strategy}-{seed}.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i, r in enumerate(pool):
            f.write(json.dumps({"external_id": f"p{i}", "text": r["text"]}) + "\n")
    job = import_file(project=project, user=owner, path=path)
    assert job.status == "succeeded", job.error
    gold = {f"p{i}": r["label"] for i, r in enumerate(pool)}
    ids = dict(Item.objects.filter(project=project).values_list("external_id", "id"))
    test_rows = [(0, r["text"], labels.index(r["label"])) for r in test]

    def answer(item_id: int, external_id: str, n: int) -> None:
        with transaction.atomic():
            annotation_submit(
                item_id=item_id,
                user=owner,
                value={"label": gold[external_id]},
                idempotency_key=f"al-{n}",
            )

    n = 0
    for i in stratified_initial(pool, args.initial, seed):
        answer(ids[f"p{i}"], f"p{i}", n)
        n += 1
    curve: list[tuple[int, float]] = []
    for round_ in range(args.queries + 1):
        t0 = time.monotonic()
        job = train_start(project=project, user=owner, reason="active learning")
        job.refresh_from_db()
        assert job.status == "succeeded", job.error
        active = ModelVersion.objects.get(project=project, status="active")
        # the version experts are served, fine-tuned or (when no candidate has beaten it yet) zero-shot
        accuracy = evaluate_version(active, test_rows)["accuracy"]
        curve.append((n, accuracy))
        if rounds is not None:
            rounds.append(
                {
                    "labels": n,
                    "accuracy": accuracy,
                    "active_version": active.version,
                    **{
                        k: job.result.get(k) for k in ("promoted", "n_validation", "temperature", "candidate", "active")
                    },
                    "scores": open_scores(project, "margin" if strategy == "random" else strategy),
                }
            )
        log(
            f"{dataset} {strategy} seed {seed} round {round_}: {n} labels, test accuracy {accuracy:.4f} "
            f"(v{active.version}, promoted {job.result.get('promoted')}, {time.monotonic() - t0:.1f} s)"
        )
        if round_ == args.queries:
            break
        would_serve = batch_by_measure(project, args.batch) if binary_check is not None else {}
        served_ids = []
        for _ in range(args.batch):
            served = item_next_for_annotator(project=project, user=owner)
            if served is None:
                break
            served_ids.append(served.item.pk)
            answer(served.item.pk, served.item.external_id, n)
            n += 1
        if binary_check is not None:
            # the check's own premise: it predicts the batch the queue really served
            assert served_ids == would_serve["margin"], (served_ids, would_serve["margin"])
            binary_check.append({m: set(would_serve[m]) == set(served_ids) for m in ("least_confidence", "entropy")})
    return curve


def plot(curves: dict[str, list[list[tuple[int, float]]]], dataset: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy, runs in curves.items():
        xs = [x for x, _ in runs[0]]
        ys = [mean_std([run[i][1] for run in runs])[0] for i in range(len(xs))]
        ax.plot(xs, ys, marker="o", markersize=3, label=strategy)
    ax.set_xlabel("labels")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Tandem active learning on {dataset} (MiniLM-L6, mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def protocol(args) -> dict:
    return {
        "initial": args.initial,
        "queries": args.queries,
        "batch": args.batch,
        "seeds": args.seeds,
        "pool": args.pool or "all",
        "epochs": args.epochs,
        "lr": args.lr,
        "patience": args.patience,
        "freeze_word_embeddings": True,
        "max_length": args.max_length,
        "promotion": "validation accuracy, ties by log loss",
    }


def run_in_process(args) -> None:
    """`--run STRATEGY:SEED:FILE`: one (strategy, seed) run on its own fresh database, its curve to FILE."""
    strategy, seed_text, out = args.run.split(":", 2)
    seed = int(seed_text)
    db = f"tandem_al_{os.getpid()}"
    psql(f"CREATE DATABASE {db}")
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="tandem-al-") as tmp:
            setup_django(db, Path(tmp) / "models", args)
            labels, pool, test = load(args.dataset, args.pool, 1000 + seed)
            binary_check = [] if strategy == "margin" and len(labels) == 2 else None
            rounds: list[dict] = []
            curve = run_one(args.dataset, labels, pool, test, strategy, seed, args, Path(tmp), binary_check, rounds)
    finally:
        from django.db import connections

        connections.close_all()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", check=False)
    record = {
        "dataset": args.dataset,
        "strategy": strategy,
        "seed": seed,
        "protocol": protocol(args),
        "threads": args.threads,
        "curve": curve,
        "binary_check": binary_check,
        "rounds": rounds,
        "seconds": round(time.monotonic() - started, 1),
    }
    tmp_out = Path(out).with_suffix(".part")
    tmp_out.write_text(json.dumps(record))
    tmp_out.rename(out)


def schedule(args, runs: list[tuple[str, int]], runs_dir: Path) -> dict[tuple[str, int], dict]:
    """Every (strategy, seed) run as a child process on its own database, `--jobs` at a time, each with
    its share of `--threads`. On this 2-core machine two 1-thread runs side by side finish sooner than one
    2-thread run after another (a TREC-6 random run: 540 s on 2 threads, 660 s on 1; with the word
    embeddings still trained, AdamW's memory traffic made it the other way round).
    Finished runs are files in `runs_dir`; with --resume the ones already there are kept."""
    threads = max(1, args.threads // max(1, args.jobs))
    results: dict[tuple[str, int], dict] = {}
    pending: list[tuple[str, int, Path]] = []
    for strategy, seed in runs:
        path = runs_dir / f"{args.dataset}-{strategy}-s{seed}.json"
        if args.resume and path.is_file():
            record = json.loads(path.read_text())
            if record["protocol"] == protocol(args):
                log(f"kept {path.name} ({record['seconds']} s)")
                results[(strategy, seed)] = record
                continue
        pending.append((strategy, seed, path))
    passthrough = [
        f"--dataset={args.dataset}",
        f"--initial={args.initial}",
        f"--queries={args.queries}",
        f"--batch={args.batch}",
        f"--seeds={args.seeds}",
        f"--epochs={args.epochs}",
        f"--lr={args.lr}",
        f"--patience={args.patience}",
        f"--max-length={args.max_length}",
        f"--threads={threads}",
    ] + ([f"--pool={args.pool}"] if args.pool else [])
    running: list[tuple[subprocess.Popen, str, int, Path]] = []
    try:
        while pending or running:
            while pending and len(running) < max(1, args.jobs):
                strategy, seed, path = pending.pop(0)
                cmd = [sys.executable, __file__, *passthrough, f"--run={strategy}:{seed}:{path}"]
                running.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL), strategy, seed, path))
            time.sleep(1)
            for entry in list(running):
                proc, strategy, seed, path = entry
                if proc.poll() is None:
                    continue
                running.remove(entry)
                if proc.returncode != 0 or not path.is_file():
                    raise RuntimeError(f"the {strategy} seed {seed} run failed (exit {proc.returncode})")
                results[(strategy, seed)] = json.loads(path.read_text())
    finally:
        for proc, *_ in running:
            proc.terminate()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="trec", choices=sorted(PAPER))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--initial", type=int, default=25)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--pool", type=int, default=None, help="subsample the pool to this many items")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--patience", type=int, default=1, help="epochs without a better validation loss, then stop")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads in all (split between --jobs)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel processes")
    parser.add_argument(
        "--all-binary-strategies",
        action="store_true",
        help="on two-class datasets, run least_confidence and entropy too instead of reporting margin's runs for them",
    )
    parser.add_argument("--only-seeds", help="run (and summarise) only these of the seeds, e.g. 1,2")
    parser.add_argument("--resume", action="store_true", help="keep finished runs found in --out/runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # internal: one run in this process
    args = parser.parse_args()
    if args.run:
        run_in_process(args)
        return
    strategies = [s for s in args.strategies.split(",") if s]
    labels = load(args.dataset, args.pool, 1001)[0]
    # With two classes, 1 - p_max, 1 - (p_max - p_min) = 2 (1 - p_max) and the entropy of (p_max, 1 - p_max)
    # all decrease in p_max: the three measures rank a pool identically and serve the same items, so
    # their runs would be the same run. Schröder et al. note the same (PE = BT for binary tasks).
    same_as_margin = (
        {s for s in ("least_confidence", "entropy") if s in strategies}
        if len(labels) == 2 and "margin" in strategies and not args.all_binary_strategies
        else set()
    )
    seeds = [int(x) for x in args.only_seeds.split(",")] if args.only_seeds else list(range(1, args.seeds + 1))
    runs = [(s, seed) for seed in seeds for s in strategies if s not in same_as_margin]
    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = schedule(args, runs, runs_dir)
    curves: dict[str, list[list[tuple[int, float]]]] = {
        s: [[tuple(p) for p in results[("margin" if s in same_as_margin else s, seed)]["curve"]] for seed in seeds]
        for s in strategies
    }
    stem = f"active_learning_{args.dataset}"
    with open(args.out / f"{stem}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "strategy", "seed", "labels", "accuracy"])
        for strategy, strategy_runs in curves.items():
            for seed, run in enumerate(strategy_runs, 1):
                for n, acc in run:
                    w.writerow([args.dataset, strategy, seed, n, acc])
    plot(curves, args.dataset, args.out / f"{stem}.png")
    summary = {}
    for strategy, strategy_runs in curves.items():
        finals = [run[-1][1] for run in strategy_runs]
        aucs = [auc(run) for run in strategy_runs]
        (final_mean, final_std), (auc_mean, auc_std) = mean_std(finals), mean_std(aucs)
        summary[strategy] = {
            "final_accuracy_mean": round(final_mean, 4),
            "final_accuracy_std": round(final_std, 4),
            "auc_mean": round(auc_mean, 4),
            "auc_std": round(auc_std, 4),
            "labels": strategy_runs[0][-1][0],
            "accuracy_at": {
                n: round(mean_std([acc for run in strategy_runs for m, acc in run if m == n])[0], 4)
                for n in (25, 100, 200, 300, 525)
                if any(m == n for m, _ in strategy_runs[0])
            },
        }
        decisions = [
            r["promoted"]
            for seed in seeds
            for r in results[("margin" if strategy in same_as_margin else strategy, seed)].get("rounds") or []
        ]
        if decisions:
            # how often a round's candidate beat the active version on validation (else the old one served on)
            summary[strategy]["promoted_rounds"] = f"{sum(decisions)} of {len(decisions)}"
        if strategy in same_as_margin:
            checks = [
                round_[strategy] for seed in seeds for round_ in results[("margin", seed)].get("binary_check") or []
            ]
            summary[strategy]["runs"] = (
                f"margin's: with two classes it ranks the pool alike; in {sum(checks)} of {len(checks)} rounds "
                f"the batch {strategy} would have served was margin's batch"
            )
    targets = {}
    if "margin" in summary and "random" in summary:
        targets["margin_auc_gt_random_auc"] = summary["margin"]["auc_mean"] > summary["random"]["auc_mean"]
    if args.dataset == "trec":
        best = max(v["final_accuracy_mean"] for v in summary.values())
        targets["trec_final_accuracy_ge_0.94"] = best >= 0.94
    emit(
        {
            "bench": "active_learning",
            "dataset": args.dataset,
            "model": "all-MiniLM-L6-v2 (22M), fine-tuned on CPU",
            "protocol": protocol(args),
            "seeds_summarised": seeds,
            "strategies": summary,
            "targets": targets,
            "paper_bert_large": PAPER[args.dataset],
            "label_counts": dict(Counter(r["label"] for r in load(args.dataset, args.pool, 1001)[1])),
            "seconds": round(time.monotonic() - started, 1),
            "run_seconds": {f"{s}-s{seed}": r["seconds"] for (s, seed), r in sorted(results.items())},
            "parallel": {"jobs": args.jobs, "threads_per_run": max(1, args.threads // max(1, args.jobs))},
            "files": [str(args.out / f"{stem}.csv"), str(args.out / f"{stem}.png")],
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
