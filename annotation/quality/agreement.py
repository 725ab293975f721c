"""Inter-annotator agreement (issue 13, point 4), computed by the reference libraries on the project's
counting annotations: Krippendorff's alpha (the `krippendorff` package), Fleiss' kappa (statsmodels) and
pairwise Cohen's kappa (statsmodels' `cohens_kappa` on each pair's contingency table: the number
scikit-learn's `cohen_kappa_score` gives, at a twentieth of its per-call cost, which 1,225 pairs of 50
annotators need; tests/quality compares both).

What is rated (so that API, dashboard and tests agree):
- The items: every non-gold item with at least 2 counting annotations (Annotation.counts: a rejected
  annotation is out), whose last counting annotation was created inside the window. Each item's counting
  annotations all take part, older ones included.
- The units and values: single-label, one unit per item, the value `value["label"]`, nominal. Multilabel, one
  unit per item, the value the set `value["labels"]`, compared with NLTK's `masi_distance` passed to the
  `krippendorff` package as its custom-metric callable (two empty sets are identical: distance 0, where
  masi_distance itself would divide by zero); Fleiss and Cohen, which are nominal, take the canonical label-set
  string as the category. Spans: one unit per whitespace token of the text (`\\S+`), the value each annotator's
  label for it, `O` outside spans; a token belongs to a span when their character ranges overlap (where
  spans of different labels overlap one token, the first in (start, end, label) order wins).
- Annotators x units with missing values: nobody rates every item.
- Fleiss' kappa: the units of the items with exactly k (the project's overlap) counting annotations, the
  categories the values above.
- Pairwise Cohen's kappa: every pair of annotators who rated at least one common item among those above,
  `{"a", "b", "kappa", "n"}` with a < b by username; n is the number of items both rated, and the kappa is over
  their units (for spans, the tokens of those items).
- per_label: the one-vs-rest alpha of each project label (a rating is "L" or "not L": the label, L among the
  labels, or the token labeled L), nominal, over the same units.
- over_time: per UTC day of the items' last counting annotation, the alpha of that day's items and their count.

Where a figure is undefined it is None, never 0: no item, fewer than 2 items (per project, per label and per
day), one annotator only (then no item has 2 counting annotations). The `krippendorff` package raises (one value in
its domain) or returns nan (with a warning) when every pairable value is the same one, since its expected
disagreement is then 0; we define
alpha = 1.0 there, perfect agreement with at least 2 pairable values, and take the library's answer
everywhere else. Fleiss' kappa follows the same rule. A label nobody used has a one-vs-rest alpha of None (no
information about it), although all its values ("not L") are identical. Cohen's kappa is None below 2 shared
items and where the library answers nan (both annotators used one and the same category throughout).

Heavy libraries are imported inside the functions: the web process imports nothing of them at start.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection

from annotation.models import Annotation, Item, Project
from annotation.models.project import TaskType
from annotation.quality.window import ALL, Window
from annotation.services.gold import OUTSIDE


@dataclass
class Ratings:
    """The counting annotations of the items in the alpha, as ratings of units by coders.

    One rating per (unit, coder): for classification and multilabel a unit is an item, for spans a token of an
    item. Values are indexes into `domain`.
    """

    unit: np.ndarray  # per rating: its unit
    coder: np.ndarray  # per rating: the annotator's index in `coders`
    code: np.ndarray  # per rating: the value's index in `domain`
    unit_item: np.ndarray  # per unit: its item's index in `item_ids`
    item_ids: np.ndarray  # per item: Item.id
    item_n: np.ndarray  # per item: its counting annotations
    item_day: np.ndarray  # per item: index into `days` of the UTC day of its last counting annotation
    days: list[date]  # sorted
    coders: list[str]  # usernames, sorted: pairs come out as (a, b) with a < b
    domain: list[Any]  # the values: label names (and "O" for spans), or frozensets of label names
    categories: list[str]  # per value, its name as a nominal category (the canonical label-set string)
    distance: np.ndarray | None  # multilabel: MASI distance between values (V x V); None: nominal
    membership: np.ndarray  # (V, L) bool: value v "contains" label l, for the one-vs-rest alphas
    labels: list[str]  # the project's labels, in order

    @property
    def n_units(self) -> int:
        return len(self.unit_item)

    def value_counts(self, units: np.ndarray | None = None) -> np.ndarray:
        """(units, V): how many coders gave each value to each unit (the `krippendorff` value_counts form)."""
        v = len(self.domain)
        counts = np.bincount(self.unit * v + self.code, minlength=self.n_units * v).reshape(self.n_units, v)
        return counts if units is None else counts[units]


def _load_rows(project: Project, window: Window) -> list[tuple[Any, ...]]:
    """One statement: (item_id, annotator_id, value, n counting, UTC day of the last, text or None) per counting
    annotation of the items in the alpha, by item. The items are picked by an aggregate first (a hash
    aggregate, no sort of every annotation), so that a day range reads back only its own items' annotations."""
    key = {TaskType.CLASSIFICATION: "label", TaskType.MULTILABEL: "labels"}.get(TaskType(project.task_type), "spans")
    value = f"a.value->>'{key}'"
    spans = project.task_type == TaskType.SPANS
    # the text only for spans, and once per item (its first annotation's row)
    text = "CASE WHEN a.annotator_id = t.first THEN i.data->>'text' END" if spans else "NULL"
    join_item = f"JOIN {Item._meta.db_table} i ON i.id = t.item_id" if spans else ""
    sql = f"""
        WITH t AS (
            SELECT a.item_id, count(*) AS n, max(a.created_at) AS last, min(a.annotator_id) AS first
            FROM {Annotation._meta.db_table} a JOIN {Item._meta.db_table} i ON i.id = a.item_id
            WHERE i.project_id = %(project)s AND NOT i.is_gold AND a.counts
            GROUP BY a.item_id
            HAVING count(*) >= 2
               AND (%(start)s::timestamptz IS NULL OR max(a.created_at) >= %(start)s::timestamptz)
               AND (%(end)s::timestamptz IS NULL OR max(a.created_at) < %(end)s::timestamptz)
        )
        SELECT t.item_id, a.annotator_id, {value}, t.n, (t.last AT TIME ZONE 'UTC')::date, {text}
        FROM t JOIN {Annotation._meta.db_table} a ON a.item_id = t.item_id AND a.counts {join_item}
        ORDER BY t.item_id
    """  # noqa: S608 - only table names and the fixed expressions above are formatted in
    with connection.cursor() as cursor:
        cursor.execute(sql, {"project": project.pk, "start": window.start, "end": window.end})
        return cursor.fetchall()


def _label_order(labels: list[str]) -> Callable[[str], tuple[int, str]]:
    order = {name: i for i, name in enumerate(labels)}
    return lambda name: (order.get(name, len(order)), name)


@cache
def _whitespace() -> np.ndarray:
    """The code points `\\s` matches in a str pattern (str.isspace); none lies above U+3000."""
    return np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)


def span_token_codes(
    texts: list[str], ann_item: np.ndarray, ann_spans: list[list[dict[str, Any]]], code_of: dict[Any, int]
) -> tuple[np.ndarray, np.ndarray]:
    """span_token_labels for every annotation at once, with numpy: (the token count of each text, the value code of
    each (annotation, token) in annotation then token order).

    The texts are joined with a space, so that every token has one range of the joined string; a span's
    tokens are then one contiguous range, found by binary search; where spans overlap a token the first
    in (start, end, label) order wins, as in services/gold.py's span_token_labels (the one rule)."""
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    char_offset = np.cumsum(lengths + 1) - (lengths + 1)
    chars = np.frombuffer((" ".join(texts) + " ").encode("utf-32-le"), dtype=np.uint32)
    solid = ~np.isin(chars, _whitespace())
    before = np.concatenate([[False], solid[:-1]])
    after = np.concatenate([solid[1:], [False]])
    tok_start = np.flatnonzero(solid & ~before)
    tok_end = np.flatnonzero(solid & ~after) + 1
    token_count = np.bincount(np.searchsorted(char_offset, tok_start, side="right") - 1, minlength=len(texts))
    first_token = np.cumsum(token_count) - token_count
    sizes = token_count[ann_item]
    first_rating = np.cumsum(sizes) - sizes
    codes = np.full(int(sizes.sum()), code_of[OUTSIDE], dtype=np.int64)

    flat = [(i, sp["start"], sp["end"], sp["label"]) for i, spans in enumerate(ann_spans) for sp in spans]
    if not flat:
        return token_count, codes
    s_ann = np.array([f[0] for f in flat], dtype=np.int64)
    s_start = np.array([f[1] for f in flat], dtype=np.int64)
    s_end = np.array([f[2] for f in flat], dtype=np.int64)
    names = sorted({f[3] for f in flat})
    s_name = np.array([names.index(f[3]) for f in flat], dtype=np.int64)
    s_code = np.array([code_of[name] for name in names], dtype=np.int64)[s_name]
    item = ann_item[s_ann]
    base = char_offset[item]
    lo = np.searchsorted(tok_end, base + s_start, side="right")  # the first token ending after the start
    hi = np.searchsorted(tok_start, base + np.minimum(s_end, lengths[item]), side="left")  # tokens starting before
    n = np.maximum(hi - lo, 0)
    order = np.lexsort((s_name, s_end, s_start, s_ann))
    rank = np.empty(len(flat), dtype=np.int64)
    rank[order] = np.arange(len(flat))
    span = np.repeat(np.arange(len(flat)), n)
    token = np.repeat(lo, n) + np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    rating = first_rating[s_ann[span]] + token - first_token[item[span]]
    by = np.lexsort((rank[span], rating))
    rating, span = rating[by], span[by]
    first = np.concatenate([[True], rating[1:] != rating[:-1]]) if len(rating) else np.zeros(0, dtype=bool)
    codes[rating[first]] = s_code[span[first]]
    return token_count, codes


def _masi(a: frozenset[str], b: frozenset[str]) -> float:
    from nltk.metrics.distance import masi_distance  # type: ignore[import-untyped, unused-ignore]

    # masi_distance divides by the union, empty for two empty sets: identical values, distance 0
    return 0.0 if a == b else float(masi_distance(set(a), set(b)))


def load_ratings(project: Project, window: Window = ALL) -> Ratings:
    """The ratings behind every agreement figure (two statements: the annotations, then the usernames).

    Column-wise: each distinct stored value is parsed once (a project has few), items, coders and values are
    mapped to indexes with numpy."""
    rows = _load_rows(project, window)
    labels = project.label_names
    key = _label_order(labels)
    task = project.task_type
    item_col, user_col, value_col, n_col, day_col, text_col = (
        (list(c) for c in zip(*rows, strict=True)) if rows else ([] for _ in range(6))
    )

    item_ids, first, ann_item = np.unique(np.array(item_col, dtype=np.int64), return_index=True, return_inverse=True)
    item_n = np.array(n_col, dtype=np.int64)[first] if len(first) else np.zeros(0, dtype=np.int64)
    item_days = [day_col[i] for i in first.tolist()]

    # each distinct stored value once: raw string -> its index, then its parsed form
    distinct: dict[Any, int] = {}
    raw_code = np.array([distinct.setdefault(v, len(distinct)) for v in value_col], dtype=np.int64)
    if task == TaskType.CLASSIFICATION:
        parsed: list[Any] = list(distinct)
    elif task == TaskType.MULTILABEL:
        parsed = [frozenset(json.loads(v) if v else []) for v in distinct]
    else:
        parsed = [json.loads(v) if v else [] for v in distinct]

    if task == TaskType.SPANS:
        # the text came with one row of each item
        texts = [""] * len(item_ids)
        for idx, text in zip(ann_item.tolist(), text_col, strict=True):
            if text is not None:
                texts[idx] = text

    # the value domain and its nominal category names
    distance: np.ndarray | None = None
    if task == TaskType.MULTILABEL:
        domain: list[Any] = sorted(set(parsed), key=lambda s: sorted(map(key, s)))
        categories = [json.dumps(sorted(s, key=key)) for s in domain]
        distance = np.array([[_masi(a, b) for b in domain] for a in domain], dtype=np.float64).reshape(
            len(domain), len(domain)
        )
        membership = np.array([[name in s for name in labels] for s in domain], dtype=bool).reshape(
            len(domain), len(labels)
        )
    else:
        seen = {sp["label"] for v in parsed for sp in v} if task == TaskType.SPANS else set(parsed)
        base = ([OUTSIDE] if task == TaskType.SPANS else []) + labels
        # labels no longer in the project still count (str(): a malformed value without a label is None)
        domain = base + sorted(seen - set(base), key=lambda v: key(str(v)))
        categories = list(domain)
        membership = np.array([[d == name for name in labels] for d in domain], dtype=bool).reshape(
            len(domain), len(labels)
        )
    code_of = {d: i for i, d in enumerate(domain)}

    # coders by username, so that pairs come out ordered
    user_ids, ann_user = np.unique(np.array(user_col, dtype=np.int64), return_inverse=True)
    names = dict(get_user_model().objects.filter(pk__in=user_ids.tolist()).values_list("pk", "username"))
    coders = sorted(names.values())
    rank = {name: i for i, name in enumerate(coders)}
    ann_coder = np.array([rank[names[u]] for u in user_ids.tolist()], dtype=np.int64)[ann_user]

    days = sorted(set(item_days))
    day_of = {d: i for i, d in enumerate(days)}
    if task == TaskType.SPANS:
        token_count, code = span_token_codes(texts, ann_item, [parsed[rc] for rc in raw_code.tolist()], code_of)
        first_unit = np.cumsum(token_count) - token_count
        unit_item = np.repeat(np.arange(len(item_ids)), token_count)
        sizes = token_count[ann_item]
        offsets = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        unit = np.repeat(first_unit[ann_item], sizes) + offsets
        coder = np.repeat(ann_coder, sizes)
    else:
        unit_item = np.arange(len(item_ids))
        unit = ann_item.astype(np.int64)
        coder = ann_coder
        code = np.array([code_of[v] for v in parsed], dtype=np.int64)[raw_code] if len(raw_code) else raw_code

    return Ratings(
        unit=unit,
        coder=coder,
        code=code,
        unit_item=unit_item,
        item_ids=item_ids,
        item_n=item_n,
        item_day=np.array([day_of[d] for d in item_days], dtype=np.int64),
        days=days,
        coders=coders,
        domain=domain,
        categories=categories,
        distance=distance,
        membership=membership,
        labels=labels,
    )


def _undefined(value: Any) -> bool:
    return value is None or not np.isfinite(value)


def alpha_from_counts(value_counts: np.ndarray, distance: np.ndarray | None = None) -> float | None:
    """Krippendorff's alpha of a units x values count table (nominal, or a distance between values), by the
    `krippendorff` package; 1.0 where every pairable value is the same one, None without a pairable value."""
    import krippendorff

    pairable = value_counts[value_counts.sum(axis=1) >= 2]
    if not len(pairable):
        return None
    used = np.flatnonzero(pairable.sum(axis=0))
    if len(used) == 1:
        return 1.0  # zero expected disagreement: the library's nan, defined as perfect agreement
    # values nobody gave add nothing to the coincidences: dropping them keeps the number and the matrices small
    pairable = pairable[:, used]
    level: Any = "nominal"
    if distance is not None:
        sub = distance[np.ix_(used, used)]

        def level(v1: Any, v2: Any, i1: np.ndarray, i2: np.ndarray, n_v: Any, dtype: Any = np.float64) -> np.ndarray:
            # the package's custom-metric form: distances between the domain's values by their indexes
            return sub[i1, i2].astype(dtype)

    value = krippendorff.alpha(value_counts=pairable, level_of_measurement=level)
    return None if _undefined(value) else float(value)


def _alpha(ratings: Ratings, counts: np.ndarray, units: np.ndarray | None, n_items: int) -> float | None:
    if n_items < 2:
        return None
    table = counts if units is None else counts[units]
    return alpha_from_counts(table, ratings.distance)


def _fleiss(ratings: Ratings, counts: np.ndarray, k: int) -> float | None:
    """Fleiss' kappa (statsmodels) over the units of the items with exactly k counting annotations."""
    from statsmodels.stats.inter_rater import fleiss_kappa  # type: ignore[import-untyped, unused-ignore]

    full = ratings.item_n == k
    if k < 2 or int(full.sum()) < 2:
        return None
    table = counts[full[ratings.unit_item]]
    if np.count_nonzero(table.sum(axis=0)) == 1:
        return 1.0  # every rating the same category: statsmodels' nan, defined as perfect agreement
    with np.errstate(divide="ignore", invalid="ignore"):
        value = fleiss_kappa(table, method="fleiss")
    return None if _undefined(value) else float(value)


def _pairwise(ratings: Ratings) -> list[dict[str, Any]]:
    """Cohen's kappa of every pair of annotators who share an item, over the units of the items both rated.

    Every unit holds at most one rating per coder, so sorting by (unit, coder) and pairing each rating with the
    next d ratings of the same unit yields every (a, b) pair with a < b once, without a loop over pairs."""
    from statsmodels.stats.inter_rater import cohens_kappa  # type: ignore[import-untyped, unused-ignore]

    order = np.lexsort((ratings.coder, ratings.unit))
    unit, coder, code = ratings.unit[order], ratings.coder[order], ratings.code[order]
    n_coders = len(ratings.coders)
    if not len(unit) or n_coders < 2:
        return []
    per_unit = np.bincount(unit)
    a_l, b_l, ca_l, cb_l, u_l = [], [], [], [], []
    for d in range(1, int(per_unit.max())):
        same = unit[d:] == unit[:-d]
        a_l.append(coder[:-d][same])
        b_l.append(coder[d:][same])
        ca_l.append(code[:-d][same])
        cb_l.append(code[d:][same])
        u_l.append(unit[:-d][same])
    if not a_l:
        return []
    pair = np.concatenate(a_l) * n_coders + np.concatenate(b_l)
    ca, cb, pu = np.concatenate(ca_l), np.concatenate(cb_l), np.concatenate(u_l)
    keys, pair_index = np.unique(pair, return_inverse=True)
    # n: the items both rated (for spans, each item has many token units)
    n_items = len(ratings.item_ids)
    if ratings.n_units == n_items:
        n_of = np.bincount(pair_index, minlength=len(keys))
    else:
        n_of = np.bincount(np.unique(pair_index * n_items + ratings.unit_item[pu]) // n_items, minlength=len(keys))
    by_pair = np.argsort(pair_index, kind="stable")
    ca, cb = ca[by_pair], cb[by_pair]
    ends = np.cumsum(np.bincount(pair_index, minlength=len(keys)))
    starts = ends - np.bincount(pair_index, minlength=len(keys))
    v = len(ratings.domain)
    out: list[dict[str, Any]] = []
    # statsmodels warns (0/0) where both used one category only: that kappa is None
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for key, s, e, n in zip(keys.tolist(), starts.tolist(), ends.tolist(), n_of.tolist(), strict=True):
            kappa: float | None = None
            if n >= 2:
                # values neither used are empty rows and columns of the table: they change no kappa; where the
                # domain is large (many distinct label sets) the pair's table keeps only the values it used
                x, y, m = ca[s:e], cb[s:e], v
                if v > 64:
                    used, inv = np.unique(np.concatenate([x, y]), return_inverse=True)
                    x, y, m = inv[: e - s], inv[e - s :], len(used)
                table = np.bincount(x * m + y, minlength=m * m).reshape(m, m)
                value = cohens_kappa(table, return_results=False)
                kappa = None if _undefined(value) else float(value)
            out.append(
                {"a": ratings.coders[key // n_coders], "b": ratings.coders[key % n_coders], "kappa": kappa, "n": n}
            )
    return out


def _per_label(ratings: Ratings, counts: np.ndarray, n_items: int) -> dict[str, dict[str, float | None]]:
    """One-vs-rest alpha per project label: each rating becomes "L" or "not L" (nominal)."""
    with_label = counts @ ratings.membership.astype(np.int64)  # (units, L): ratings containing the label
    total = counts.sum(axis=1)
    out: dict[str, dict[str, float | None]] = {}
    for j, name in enumerate(ratings.labels):
        used = with_label[:, j]
        alpha = None
        if n_items >= 2 and used.any():  # a label nobody used says nothing: None, not the identical-values 1.0
            alpha = alpha_from_counts(np.stack([total - used, used], axis=1))
        out[name] = {"krippendorff_alpha": alpha}
    return out


def _over_time(ratings: Ratings, counts: np.ndarray) -> list[dict[str, Any]]:
    """Per UTC day of the items' last counting annotation: alpha over that day's items."""
    unit_day = ratings.item_day[ratings.unit_item]
    per_day = np.bincount(ratings.item_day, minlength=len(ratings.days))
    return [
        {
            "day": day.isoformat(),
            "krippendorff_alpha": _alpha(ratings, counts, unit_day == i, int(per_day[i])),
            "n_items": int(per_day[i]),
        }
        for i, day in enumerate(ratings.days)
    ]


def agreement_section(project: Project, window: Window = ALL) -> dict[str, Any]:
    """The "agreement" object of GET /api/projects/{id}/metrics (see the module docstring)."""
    ratings = load_ratings(project, window)
    counts = ratings.value_counts()
    n_items = len(ratings.item_ids)
    return {
        "krippendorff_alpha": _alpha(ratings, counts, None, n_items),
        "fleiss_kappa": _fleiss(ratings, counts, project.annotations_per_item),
        "pairwise_cohen_kappa": _pairwise(ratings),
        "per_label": _per_label(ratings, counts, n_items),
        "n_items": n_items,
        "over_time": _over_time(ratings, counts),
    }
