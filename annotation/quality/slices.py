"""The bias view: quality per slice of the data (issue 13, point 7).

Fields: every metadata key of the items (the keys of Item.data other than "text"), each value stringified as
PostgreSQL's `jsonb_each_text` writes it (JSON null as "null"), and `text_length` (quartile buckets of the
project's text lengths in characters, e.g. "3-42", "43-80", ...; empty buckets, where quartiles coincide, are
left out; a metadata key named "text_length" is shadowed by it). A field with more than MAX_SLICES distinct
values keeps the MAX_SLICES largest slices (ties by value) and says `truncated`. Slices are counted in SQL (one
GROUP BY over the project's metadata, ranked there), so a 1M-item project's documents never reach Python. That
project-wide part (`slice_structure`: the fields, their largest values with n, `truncated`, the length buckets)
does not depend on the window: annotation/quality/metrics.py computes it with each whole-project computation,
caches it, and day ranges reuse it while it is fresh. Past it, only the items that carry a figure in the window
(rated, gold-answered or decided) are read, their slice values looked up by id.

Per slice:
- n: the project's items in it (every item, whatever the window).
- agreement: Krippendorff's alpha over the slice's items in the project's alpha (annotation/quality/agreement.py:
  the same ratings, units and distance, `alpha_from_counts`), None below 2 items. agreement_ci: a 95 %
  percentile bootstrap interval: BOOTSTRAP_DRAWS resamples of the slice's items with replacement (seeded per
  project, field and value, so the same data gives the same interval), alpha recomputed from each resample's
  coincidences (draws without a pairable value are left out). Items with equal coincidence features are drawn
  as one pattern (a multinomial over the patterns, found once per computation), so a draw costs a matrix row.
- gold_accuracy: the mean score of members' answers to the slice's gold items (since each member's
  gold_since, inside the window; gold_answer_score), with a 95 % Wilson interval.
- model_accuracy: the active version's live accuracy against final labels (annotation/quality/model.py,
  `final_trials`: one trial per decided item in the window, every one of them, not only the last N), with a
  95 % Wilson interval.
- flagged: the metrics for which the slice is significantly worse than the rest of the project (every trial
  outside the slice, items without the field included): a one-sided two-proportion z-test
  (statsmodels `proportions_ztest`, alternative "smaller"), Holm-corrected over the slices of that field
  (`holm_reject`: statsmodels `multipletests(method="holm")`'s decision, tested against it), alpha 0.05; slices or rests with fewer than 2 trials are not tested, and a
  pooled proportion of 0 or 1 (no difference possible) gives p = 1. Span scores are fractions (token shares):
  their sums enter the test as success counts.
  Agreement is not flagged: alpha is not a proportion of independent trials (its expected disagreement
  depends on the pooled value distribution of the very items compared, and items carry unequal numbers of
  pairable values), so no two-proportion test applies to it; a resampling test against the rest would need a
  bootstrap of the whole project per slice. Its bootstrap interval is shown instead.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection

from annotation.models import Item, Project
from annotation.models.project import TaskType
from annotation.quality.agreement import Ratings, alpha_from_counts, load_ratings
from annotation.quality.model import Trial, active_version, final_trials, wilson
from annotation.quality.window import Window
from annotation.services.gold import gold_answer_score, gold_answers

MAX_SLICES = 20
BOOTSTRAP_DRAWS = 1000
SEED = 13
ALPHA = 0.05
TEXT_LENGTH = "text_length"
FLAGGED_METRICS = ("gold_accuracy", "model_accuracy")
_CHUNK = 4_000_000  # draws x items per block of bootstrap weights (~32 MB of float64)


# --- the slices ----------------------------------------------------------------------------------


def _field_slices(project: Project) -> dict[str, tuple[bool, list[tuple[str, int]]]]:
    """Per metadata field: whether it was truncated, and its largest slices as (value, n), largest first. A scan
    of every item of the project: part of `slice_structure`, computed with the whole project only."""
    sql = f"""
        WITH c AS (
            SELECT e.key, coalesce(e.value, 'null') AS value, count(*) AS n
            FROM {Item._meta.db_table} i CROSS JOIN LATERAL jsonb_each_text(i.data) e
            WHERE i.project_id = %s AND jsonb_typeof(i.data) = 'object' AND e.key <> 'text'
            GROUP BY 1, 2
        )
        SELECT key, value, n, distinct_values FROM (
            SELECT key, value, n, row_number() OVER (PARTITION BY key ORDER BY n DESC, value) AS rank,
                   count(*) OVER (PARTITION BY key) AS distinct_values
            FROM c
        ) ranked
        WHERE rank <= %s
        ORDER BY key, rank
    """  # noqa: S608 - only the table name is formatted in
    out: dict[str, tuple[bool, list[tuple[str, int]]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk, MAX_SLICES])
        for key, value, n, distinct in cursor.fetchall():
            out.setdefault(key, (distinct > MAX_SLICES, []))[1].append((value, n))
    return out


@dataclass(frozen=True)
class _Lengths:
    """The quartile buckets of the project's text lengths: bucket b holds the lengths with b `thresholds` at
    or below them (as PostgreSQL's `width_bucket` and `bisect_right` count); `labels` by bucket index;
    `slices` the non-empty buckets as (label, n)."""

    thresholds: list[int]
    labels: list[str]
    slices: list[tuple[str, int]]

    def label(self, length: int) -> str:
        return self.labels[bisect_right(self.thresholds, length)]


def _length_buckets(project: Project) -> _Lengths | None:
    """None when no item has a text. One scan: the histogram of text lengths (a few thousand distinct values at
    most, whatever the item count); the quartiles are read from it as PostgreSQL's percentile_disc reads them
    (the smallest length whose cumulative share reaches the quartile). Part of `slice_structure`."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT length(data->>'text') AS n, count(*) FROM {Item._meta.db_table} "  # noqa: S608
            "WHERE project_id = %s AND data ? 'text' GROUP BY n ORDER BY n",
            [project.pk],
        )
        histogram = [(n, c) for n, c in cursor.fetchall() if n is not None]
    if not histogram:
        return None
    total = sum(c for _, c in histogram)
    quartiles: list[int] = []
    seen = 0
    for n, c in histogram:
        seen += c
        while len(quartiles) < 3 and 4 * seen >= (len(quartiles) + 1) * total:
            quartiles.append(n)
    thresholds = [q + 1 for q in quartiles]
    counts = [0] * 4
    for n, c in histogram:
        counts[bisect_right(thresholds, n)] += c
    low, high = histogram[0][0], histogram[-1][0]
    labels = [f"{lo}-{hi}" for lo, hi in zip([low, *thresholds], [*quartiles, high], strict=True)]
    return _Lengths(thresholds, labels, [(labels[b], counts[b]) for b in range(4) if counts[b]])


def slice_structure(project: Project) -> dict[str, Any]:
    """The project-wide part of the slices, which no window changes: per metadata field whether it was truncated
    and its largest slices with their n, and the text-length quartile buckets. Plain JSON, so that it can be
    cached (annotation/quality/metrics.py stores it with each whole-project computation, and day ranges reuse
    it): {"fields": {field: {"truncated": bool, "slices": [[value, n], ...]}},
    "lengths": {"thresholds": [...], "labels": [...], "slices": [[label, n], ...]} or None}.
    Two scans of every item of the project (seconds at 1M items)."""
    lengths = _length_buckets(project)
    return {
        "fields": {
            field: {"truncated": truncated, "slices": [[value, n] for value, n in slices]}
            for field, (truncated, slices) in _field_slices(project).items()
        },
        "lengths": None
        if lengths is None
        else {
            "thresholds": lengths.thresholds,
            "labels": lengths.labels,
            "slices": [[label, n] for label, n in lengths.slices],
        },
    }


def _from_structure(
    structure: dict[str, Any],
) -> tuple[dict[str, tuple[bool, list[tuple[str, int]]]], _Lengths | None]:
    fields = {
        field: (bool(f["truncated"]), [(str(value), int(n)) for value, n in f["slices"]])
        for field, f in structure["fields"].items()
    }
    raw = structure.get("lengths")
    lengths = (
        None
        if raw is None
        else _Lengths(
            [int(t) for t in raw["thresholds"]],
            [str(label) for label in raw["labels"]],
            [(str(label), int(n)) for label, n in raw["slices"]],
        )
    )
    return fields, lengths


def _item_values(project: Project, item_ids: Sequence[int], lengths: _Lengths | None) -> dict[str, dict[int, str]]:
    """Per field, each of these items' slice value (text_length: its bucket's label). One statement, each item's
    row read once (its metadata pairs, and its text length as a row with no key), by id: only these items."""
    out: dict[str, dict[int, str]] = defaultdict(dict)
    if not item_ids:
        return out
    length = (
        "UNION ALL SELECT NULL, length(i.data->>'text')::text WHERE i.data->>'text' IS NOT NULL"
        if lengths is not None
        else ""
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT i.id, e.key, e.value FROM {Item._meta.db_table} i CROSS JOIN LATERAL ("  # noqa: S608
            "SELECT key, coalesce(value, 'null') AS value FROM jsonb_each_text("
            "CASE WHEN jsonb_typeof(i.data) = 'object' THEN i.data ELSE '{}'::jsonb END) WHERE key <> 'text' "
            f"{length}) e WHERE i.id = ANY(%s)",
            [list(item_ids)],
        )
        rows = cursor.fetchall()
    text_length: dict[int, str] = {}
    for item_id, key, value in rows:
        if key is None:
            text_length[item_id] = lengths.label(int(value))  # type: ignore[union-attr]
        else:
            out[key][item_id] = value
    if lengths is not None:
        out[TEXT_LENGTH] = text_length  # shadows a metadata key of that name
    return out


# --- the figures ---------------------------------------------------------------------------------


def gold_answer_trials(project: Project, window: Window) -> list[Trial]:
    """Members' answers to gold items since their gold_since (any time when unset), inside the window, each
    scored against the gold value: one trial per answer."""
    # gold.py's own selection of the answers that count (since gold_since), so the two figures cannot drift apart
    answers = gold_answers(project, None)
    if window.start is not None:
        answers = answers.filter(created_at__gte=window.start)
    if window.end is not None:
        answers = answers.filter(created_at__lt=window.end)
    spans = project.task_type == TaskType.SPANS
    fields = ["item_id", "value", "item__final_label__value", *(["item__data__text"] if spans else [])]
    return [
        (
            row[0],
            gold_answer_score(task_type=project.task_type, text=row[3] if spans else "", answer=row[1], gold=row[2]),
        )
        for row in answers.values_list(*fields)
    ]


class _ItemAlpha:
    """Each rated item's share of the alpha's coincidences, so that any set (or resample) of items gives its
    alpha from sums: alpha = 1 - (N - 1) * sum_i D_i / (n' D n), with D_i the item's observed disagreement
    (sum over its units of c' D c / (m - 1)), n the pairable values per value summed over the items, N their
    total and D the distance between values (nominal: 1 off the diagonal). This is the `krippendorff` package's
    formula (alpha = 1 - sum(o * d) / sum(e * d)) written per item; tests compare it with alpha_from_counts.

    `features` holds, per item, [D_i, n_i(value 1), ..., n_i(value V)]: all an item adds to alpha."""

    def __init__(self, ratings: Ratings) -> None:
        self.counts = ratings.value_counts()  # (units, V), as agreement.py counts them
        counts = self.counts.astype(np.float64)
        v = counts.shape[1]
        self.distance = ratings.distance if ratings.distance is not None else 1.0 - np.eye(v)
        m = counts.sum(axis=1)
        pairable = m >= 2
        observed = np.zeros(len(m))
        observed[pairable] = np.einsum("uv,vw,uw->u", counts[pairable], self.distance, counts[pairable]) / (
            m[pairable] - 1
        )
        counts[~pairable] = 0
        n_items = len(ratings.item_ids)
        self.features = np.zeros((n_items, v + 1))
        self.features[:, 0] = np.bincount(ratings.unit_item, weights=observed, minlength=n_items)
        np.add.at(self.features[:, 1:], ratings.unit_item, counts)
        # the distinct feature rows and each item's, found once for every slice: in the order of
        # np.unique(features, axis=0) (rows compared column by column), by a lexsort, several times faster
        order = np.lexsort(self.features.T[::-1])
        ranked = self.features[order]
        first = np.ones(n_items, dtype=bool)
        first[1:] = np.any(ranked[1:] != ranked[:-1], axis=1)
        self.patterns: np.ndarray = ranked[first]
        self.pattern_of: np.ndarray = np.empty(n_items, dtype=np.int64)
        self.pattern_of[order] = np.cumsum(first) - 1

    def alphas(self, features: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Alpha per row of weights (draws x len(features)); nan where no value is pairable."""
        sums = weights @ features
        observed, n = sums[:, 0], sums[:, 1:]
        total = n.sum(axis=1)
        expected = np.einsum("bv,vw,bw->b", n, self.distance, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = 1.0 - (total - 1.0) * observed / expected
        # one value only: zero expected disagreement, perfect agreement (agreement.alpha_from_counts's rule)
        alpha[(expected == 0) & (total >= 2)] = 1.0
        alpha[total < 2] = np.nan
        return alpha


def resample_weights(rng: np.random.Generator, k: int, draws: int) -> np.ndarray:
    """(draws, k): how often each of k items is drawn in each of `draws` resamples of k with replacement
    (drawn by index and counted: numpy's multinomial draws one binomial per category, slower for large k)."""
    picks = rng.integers(0, k, size=(draws, k)) + (np.arange(draws) * k)[:, None]
    return np.bincount(picks.ravel(), minlength=draws * k).reshape(draws, k).astype(np.float64)


def bootstrap_interval(
    items: _ItemAlpha, rows: np.ndarray, seed: Sequence[int], draws: int = BOOTSTRAP_DRAWS
) -> list[float | None]:
    """The 95 % percentile interval of alpha over `draws` resamples (with replacement) of these rated items.

    Items with equal features add the same to alpha, so a resample only needs how many items of each distinct
    pattern it drew: a multinomial over the patterns with their shares, the same distribution as drawing items
    (for single-label a few dozen patterns instead of every item). The patterns are found once for all items
    (`_ItemAlpha.patterns`, sorted): a slice's are those its items have, in that order, counted by a bincount.
    Where most items are distinct (spans), items are drawn by index and counted instead, in blocks that bound
    the memory. Either way the draws x items or draws x patterns alphas come from one matrix product."""
    k = len(rows)
    if k < 2:
        return [None, None]
    rng = np.random.default_rng(list(seed))
    counts = np.bincount(items.pattern_of[rows], minlength=len(items.patterns))
    used = np.flatnonzero(counts)
    if 3 * len(used) <= k:
        values = items.alphas(items.patterns[used], rng.multinomial(k, counts[used] / k, size=draws).astype(np.float64))
    else:
        features = items.features[rows]
        block = max(1, _CHUNK // k)
        values = np.concatenate(
            [
                items.alphas(features, resample_weights(rng, k, min(block, draws - start)))
                for start in range(0, draws, block)
            ]
        )
    values = values[np.isfinite(values)]
    if not len(values):
        return [None, None]
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def holm_reject(pvalues: Sequence[float], alpha: float = ALPHA) -> np.ndarray:
    """Holm's step-down rule: which hypotheses are rejected, in the order given. The p-values sorted, the j-th
    smallest (j from 0) is rejected while each up to it is at most alpha / (m - j). This is the decision of
    statsmodels' `multipletests(method="holm")` step for step (tests compare the two), which is not called here
    because it runs a full `gc.collect()` on every call: 0.1 s each in a web process, two per field."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    order = np.argsort(p)
    above = np.flatnonzero(p[order] > alpha / np.arange(m, 0, -1))
    reject = np.zeros(m, dtype=bool)
    reject[order[: above[0] if len(above) else m]] = True
    return reject


def _flags(slices: list[tuple[float, int]], totals: tuple[float, int]) -> list[bool]:
    """Per slice (successes, trials): significantly below the rest of the project (one-sided two-proportion
    z-test, Holm over the tested slices, ALPHA)."""
    from statsmodels.stats.proportion import proportions_ztest  # type: ignore[import-untyped, unused-ignore]

    tested, pvalues = [], []
    for i, (s, n) in enumerate(slices):
        rest_s, rest_n = totals[0] - s, totals[1] - n
        if n < 2 or rest_n < 2:
            continue
        pooled = (s + rest_s) / (n + rest_n)
        if pooled <= 0.0 or pooled >= 1.0:
            p = 1.0  # every trial alike: no difference to find (the test's variance is 0)
        else:
            _, p = proportions_ztest([s, rest_s], [n, rest_n], alternative="smaller")
        tested.append(i)
        pvalues.append(float(p))
    flagged = [False] * len(slices)
    if tested:
        reject = holm_reject(pvalues)
        for i, r in zip(tested, reject, strict=True):
            flagged[i] = bool(r)
    return flagged


def _sums(trials: list[Trial], values: dict[int, str]) -> tuple[dict[str, tuple[float, int]], tuple[float, int]]:
    """Per slice value: (sum of scores, trials); and the project's totals."""
    per: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for item_id, score in trials:
        value = values.get(item_id)
        if value is not None:
            per[value][0] += score
            per[value][1] += 1
    return {k: (v[0], int(v[1])) for k, v in per.items()}, (float(sum(s for _, s in trials)), len(trials))


def _field_rows(
    project: Project,
    field: str,
    slices: list[tuple[str, int]],
    values: dict[int, str],
    items: _ItemAlpha,
    ratings: Ratings,
    gold: list[Trial],
    model: list[Trial],
) -> list[dict[str, Any]]:
    """The rows of one field's slices (`values`: the slice value of each item that carries a figure)."""
    # each rated item's slice as an index into `slices` (-1: none of them), and its units'
    index = {value: j for j, (value, _) in enumerate(slices)}
    item_slice = np.fromiter(
        (index.get(values.get(i), -1) for i in ratings.item_ids.tolist()),  # type: ignore[arg-type]
        dtype=np.int64,
        count=len(ratings.item_ids),
    )
    unit_slice = item_slice[ratings.unit_item]
    gold_sums, gold_total = _sums(gold, values)
    model_sums, model_total = _sums(model, values)
    rows: list[dict[str, Any]] = []
    for j, (value, n) in enumerate(slices):
        rated = np.flatnonzero(item_slice == j)
        agreement = None
        ci: list[float | None] = [None, None]
        if len(rated) >= 2:  # below 2 items: no alpha, no bootstrap
            agreement = alpha_from_counts(items.counts[unit_slice == j], ratings.distance)
            if agreement is not None:
                seed = (SEED, project.pk, zlib.crc32(f"{field}\x00{value}".encode()))
                ci = bootstrap_interval(items, rated, seed)
        g = gold_sums.get(value, (0.0, 0))
        m = model_sums.get(value, (0.0, 0))
        gold_accuracy, gold_ci = wilson(*g)
        model_accuracy, model_ci = wilson(*m)
        rows.append(
            {
                "value": value,
                "n": n,
                "agreement": agreement,
                "agreement_ci": ci,
                "gold_accuracy": gold_accuracy,
                "gold_ci": gold_ci,
                "model_accuracy": model_accuracy,
                "model_ci": model_ci,
                "flagged": [],
            }
        )
    tested = {"gold_accuracy": (gold_sums, gold_total), "model_accuracy": (model_sums, model_total)}
    for metric in FLAGGED_METRICS:
        sums, total = tested[metric]
        flags = _flags([sums.get(value, (0.0, 0)) for value, _ in slices], total)
        for row, flag in zip(rows, flags, strict=True):
            if flag:
                row["flagged"].append(metric)
    return rows


def slices_section(project: Project, window: Window, structure: dict[str, Any] | None = None) -> dict[str, Any]:
    """The "slices" object of GET /api/projects/{id}/metrics (see the module docstring). `structure`: the
    project's `slice_structure` when the caller has it (cached with the whole project); without it, it is
    computed here (two scans of every item). Past it, only the items that carry a figure in the window are read
    (their slice values looked up by id)."""
    fields, lengths = _from_structure(structure if structure is not None else slice_structure(project))
    if lengths is not None:
        fields[TEXT_LENGTH] = (False, lengths.slices)
    if not fields:
        return {}
    ratings = load_ratings(project, window)
    gold = gold_answer_trials(project, window)
    active = active_version(project)
    model = final_trials(project, window, active.version) if active is not None else []
    ids = sorted({int(i) for i in ratings.item_ids} | {i for i, _ in gold} | {i for i, _ in model})
    values = _item_values(project, ids, lengths)
    items = _ItemAlpha(ratings)
    return {
        field: {
            "truncated": truncated,
            "rows": _field_rows(project, field, slices, values.get(field, {}), items, ratings, gold, model),
        }
        for field, (truncated, slices) in sorted(fields.items())
    }
