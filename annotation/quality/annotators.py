"""Per-annotator statistics and throughput (issue 13, point 5): the "annotators" and "throughput" parts of
GET /api/projects/{id}/metrics.

Definitions (so that API, dashboard and tests agree); "in the window" is by Annotation.created_at (reviews: by
Review.created_at), whole UTC days (annotation/quality/window.py):
- annotations: the member's annotations in the window, all of them (gold answers and rejected ones included).
- per_hour: annotations per hour of active time. Active time is the sum of the lead times (lead_time_ms, what
  the labeling page measured from showing the item to the submit) each capped at ACTIVE_CAP_MS, so that an
  item left open over lunch does not count as work; only annotations with a known lead time take part, in the
  count and in the time. None without a known lead time.
- median_lead_time_ms: the median of the known lead times (uncapped).
- gold_answers, gold_accuracy: annotation/services/gold.gold_scores, i.e. since the member's gold_since (the
  count an un-pause restarts), not limited to the window: it is the figure the auto-pause acts on.
- paused: Membership.paused.
- agreement_with_final: among their counting annotations of non-gold items that have a FinalLabel, the share
  equal to it.
- suggestion_accepted_rate: among their annotations with a recorded suggestion (Annotation.suggestion), the
  share the server marked accepted_suggestion (submitted unchanged).
- wrong_suggestion_accepted_rate: among their annotations whose served suggestion differs from the item's
  FinalLabel (gold items included: their final label is the gold value), the share they accepted unchanged:
  the automation-bias figure.
Two values are equal when each contains the other as JSON (PostgreSQL's jsonb @> both ways): exact match for
single labels, the same set for multilabel and spans whatever the order of the lists (the rule of
gold_answer_score). Rates are None where their denominator is 0, never 0.

Rows: every user with an annotation in the window (members whatever their role; staff who are not members
too), and every paused member; sorted by username.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate

from annotation.models import Annotation, FinalLabel, Item, Membership, Project, Review
from annotation.quality.window import ALL, Window
from annotation.services.gold import gold_scores

ACTIVE_CAP_MS = 10 * 60 * 1000  # a lead time above 10 minutes counts as 10 minutes of active time


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _stats(project: Project, window: Window) -> dict[int, dict[str, Any]]:
    """One statement: per annotator, the counts behind every figure but gold."""
    same = "({a} @> {b} AND {b} @> {a})"
    final_equal = same.format(a="a.value", b="f.value")
    suggestion = "(a.suggestion IS NOT NULL AND jsonb_typeof(a.suggestion) = 'object')"
    suggestion_equal = same.format(a="(a.suggestion->'value')", b="f.value")
    wrong = f"({suggestion} AND f.value IS NOT NULL AND NOT {suggestion_equal})"
    sql = f"""
        SELECT a.annotator_id,
               count(*),
               count(a.lead_time_ms),
               sum(least(a.lead_time_ms, %(cap)s)) FILTER (WHERE a.lead_time_ms IS NOT NULL),  -- least() skips NULLs
               percentile_cont(0.5) WITHIN GROUP (ORDER BY a.lead_time_ms),
               count(*) FILTER (WHERE a.counts AND NOT i.is_gold AND f.value IS NOT NULL),
               count(*) FILTER (WHERE a.counts AND NOT i.is_gold AND f.value IS NOT NULL AND {final_equal}),
               count(*) FILTER (WHERE {suggestion}),
               count(*) FILTER (WHERE {suggestion} AND a.accepted_suggestion),
               count(*) FILTER (WHERE {wrong}),
               count(*) FILTER (WHERE {wrong} AND a.accepted_suggestion)
        FROM {Annotation._meta.db_table} a
        JOIN {Item._meta.db_table} i ON i.id = a.item_id
        LEFT JOIN {FinalLabel._meta.db_table} f ON f.item_id = a.item_id
        WHERE i.project_id = %(project)s
          AND (%(start)s::timestamptz IS NULL OR a.created_at >= %(start)s::timestamptz)
          AND (%(end)s::timestamptz IS NULL OR a.created_at < %(end)s::timestamptz)
        GROUP BY a.annotator_id
    """  # noqa: S608 - only table names and the fixed expressions above are formatted in
    with connection.cursor() as cursor:
        cursor.execute(sql, {"project": project.pk, "start": window.start, "end": window.end, "cap": ACTIVE_CAP_MS})
        rows = cursor.fetchall()
    out: dict[int, dict[str, Any]] = {}
    for user_id, n, timed, active_ms, median, final_n, final_same, sugg_n, sugg_acc, wrong_n, wrong_acc in rows:
        out[user_id] = {
            "annotations": n,
            "per_hour": timed / (active_ms / 3_600_000) if timed and active_ms else None,
            "median_lead_time_ms": float(median) if median is not None else None,
            "agreement_with_final": _rate(final_same, final_n),
            "suggestion_accepted_rate": _rate(sugg_acc, sugg_n),
            "wrong_suggestion_accepted_rate": _rate(wrong_acc, wrong_n),
        }
    return out


def annotators_section(project: Project, window: Window = ALL) -> list[dict[str, Any]]:
    """The "annotators" list of the metrics (see the module docstring): four statements."""
    stats = _stats(project, window)
    paused = set(Membership.objects.filter(project_id=project.pk, paused=True).values_list("user_id", flat=True))
    user_ids = sorted(set(stats) | paused)
    if not user_ids:
        return []
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    gold = gold_scores(project=project, user_ids=user_ids)
    empty = {
        "annotations": 0,
        "per_hour": None,
        "median_lead_time_ms": None,
        "agreement_with_final": None,
        "suggestion_accepted_rate": None,
        "wrong_suggestion_accepted_rate": None,
    }
    rows = []
    for uid in user_ids:
        figures = stats.get(uid, empty)
        score = gold.get(uid)
        rows.append(
            {
                "username": names[uid],
                "annotations": figures["annotations"],
                "per_hour": figures["per_hour"],
                "median_lead_time_ms": figures["median_lead_time_ms"],
                "gold_answers": score.answers if score else 0,
                "gold_accuracy": score.accuracy if score else None,
                "paused": uid in paused,
                "agreement_with_final": figures["agreement_with_final"],
                "suggestion_accepted_rate": figures["suggestion_accepted_rate"],
                "wrong_suggestion_accepted_rate": figures["wrong_suggestion_accepted_rate"],
            }
        )
    rows.sort(key=lambda r: r["username"])
    return rows


def _per_day(qs: QuerySet[Any], field: str, window: Window) -> dict[str, int]:
    if window.start is not None:
        qs = qs.filter(**{f"{field}__gte": window.start})
    if window.end is not None:
        qs = qs.filter(**{f"{field}__lt": window.end})
    counted = qs.annotate(day=TruncDate(field, tzinfo=UTC)).values("day").annotate(n=Count("id")).order_by()
    return {row["day"].isoformat(): row["n"] for row in counted}


def throughput_section(project: Project, window: Window = ALL) -> list[dict[str, Any]]:
    """The "throughput" list: annotations (by created_at) and reviews (by Review.created_at) per UTC day, only
    days with either, sorted. Two statements."""
    annotations = _per_day(Annotation.objects.filter(item__project_id=project.pk), "created_at", window)
    reviews = _per_day(Review.objects.filter(annotation__item__project_id=project.pk), "created_at", window)
    return [
        {"day": day, "annotations": annotations.get(day, 0), "reviews": reviews.get(day, 0)}
        for day in sorted(set(annotations) | set(reviews))
    ]
