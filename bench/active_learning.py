"""Active learning through the product's own services, against Schröder et al. 2022's protocol.

    .venv/bin/python bench/active_learning.py --dataset trec                 # 4 strategies x 3 seeds
    .venv/bin/python bench/active_learning.py --dataset subj --seeds 3
    .venv/bin/python bench/active_learning.py --dataset trec --queries 2 --seeds 1 --pool 300   # smoke run

For every (strategy, seed) a fresh project on a fresh PostgreSQL database is driven exactly as experts
and the model loop drive it: the pool is imported (annotation.services.importing.import_file); 25
stratified initial items are labeled with the gold label (annotation_submit); then 20 rounds of: a
training run (modelsvc.registry.train_start: fixed validation reserve, fine-tune with warm start,
promotion if the candidate is not worse on validation, then the pool re-scored by the pre-label Job),
and 25 items served by `next` (item_next_for_annotator: the project's sampling = random, or uncertainty
with the strategy's measure, exploration 0) and answered with their gold labels. After each training
the active version's accuracy on the dataset's test split is one point of the learning curve.

Strategies: random (sampling random), least_confidence, entropy, margin ("breaking ties"). Output:
the curves as CSV and a PNG plot in --out, and one JSON line: final accuracy and normalised AUC (the
trapezoid area over [25, 525] labels divided by the span, so the mean accuracy over the curve) per
strategy, mean and std over seeds, with the paper's numbers beside them (../shared/datasets/PAPER_TABLE.md).

Differences from the paper, on purpose: MiniLM-L6 (22M parameters) on CPU instead of BERT-large;
the training settings below (few epochs with early stopping on the 10% validation reserve, as the
product does); `--pool` can subsample the pool to bound the run time (the pre-label Job re-scores the
whole pool after every promotion, as the product does). Promotion uses margin -1e-9: a candidate that
ties the active version on the small validation set is promoted (ties are common with 3-50 items).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import secrets
import statistics
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
            "TANDEM_TRAIN_PATIENCE": "2",
            "TANDEM_TRAIN_BATCH_SIZE": "12",
            "TANDEM_TRAIN_LEARNING_RATE": f"{args.lr:.10f}",  # django-environ misreads 5e-05
            "TANDEM_TRAIN_MAX_LENGTH": str(args.max_length),
            "TANDEM_PROMOTION_MARGIN": "-0.000000001",
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


def run_one(dataset: str, labels, pool, test, strategy: str, seed: int, args, workdir: Path) -> list[tuple[int, float]]:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from annotation.models import Item
    from annotation.services.importing import import_file
    from annotation.services.projects import project_create
    from annotation.services.queue import item_next_for_annotator
    from annotation.services.submitting import annotation_submit
    from modelsvc.models import ModelVersion
    from modelsvc.registry import evaluate_version, train_start

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
                project=project,
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
        accuracy = evaluate_version(active, test_rows)["accuracy"] if active.kind == "fine_tuned" else float("nan")
        curve.append((n, accuracy))
        log(
            f"{dataset} {strategy} seed {seed} round {round_}: {n} labels, test accuracy {accuracy:.4f} "
            f"(v{active.version}, promoted {job.result.get('promoted')}, {time.monotonic() - t0:.1f} s)"
        )
        if round_ == args.queries:
            break
        for _ in range(args.batch):
            served = item_next_for_annotator(project=project, user=owner)
            if served is None:
                break
            answer(served.item.pk, served.item.external_id, n)
            n += 1
    return curve


def plot(curves: dict[str, list[list[tuple[int, float]]]], dataset: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy, runs in curves.items():
        xs = [x for x, _ in runs[0]]
        ys = [statistics.mean(run[i][1] for run in runs) for i in range(len(xs))]
        ax.plot(xs, ys, marker="o", markersize=3, label=strategy)
    ax.set_xlabel("labels")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Tandem active learning on {dataset} (MiniLM-L6, mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


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
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    strategies = [s for s in args.strategies.split(",") if s]
    args.out.mkdir(parents=True, exist_ok=True)
    db = f"tandem_al_{os.getpid()}"
    psql(f"CREATE DATABASE {db}")
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="tandem-al-") as tmp:
            setup_django(db, Path(tmp) / "models", args)
            curves: dict[str, list[list[tuple[int, float]]]] = {s: [] for s in strategies}
            for seed in range(1, args.seeds + 1):
                labels, pool, test = load(args.dataset, args.pool, 1000 + seed)
                for strategy in strategies:
                    curves[strategy].append(run_one(args.dataset, labels, pool, test, strategy, seed, args, Path(tmp)))
    finally:
        from django.db import connections

        connections.close_all()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", check=False)
    stem = f"active_learning_{args.dataset}"
    with open(args.out / f"{stem}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "strategy", "seed", "labels", "accuracy"])
        for strategy, runs in curves.items():
            for seed, run in enumerate(runs, 1):
                for n, acc in run:
                    w.writerow([args.dataset, strategy, seed, n, acc])
    plot(curves, args.dataset, args.out / f"{stem}.png")
    summary = {}
    for strategy, runs in curves.items():
        finals = [run[-1][1] for run in runs]
        aucs = [auc(run) for run in runs]
        summary[strategy] = {
            "final_accuracy_mean": round(statistics.mean(finals), 4),
            "final_accuracy_std": round(statistics.pstdev(finals), 4),
            "auc_mean": round(statistics.mean(aucs), 4),
            "auc_std": round(statistics.pstdev(aucs), 4),
            "labels": runs[0][-1][0],
        }
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
            "protocol": {
                "initial": args.initial,
                "queries": args.queries,
                "batch": args.batch,
                "seeds": args.seeds,
                "pool": args.pool or "all",
                "epochs": args.epochs,
                "lr": args.lr,
                "max_length": args.max_length,
            },
            "strategies": summary,
            "targets": targets,
            "paper_bert_large": PAPER[args.dataset],
            "label_counts": dict(Counter(r["label"] for r in load(args.dataset, args.pool, 1001)[1])),
            "seconds": round(time.monotonic() - started, 1),
            "files": [str(args.out / f"{stem}.csv"), str(args.out / f"{stem}.png")],
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
