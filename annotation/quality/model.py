"""The model's quality: metrics per version, the learning curve, and the active version's live accuracy.

`model_section` and `learning_curve_section` read what evaluation recorded in ModelVersion.metrics (on the
fixed validation set, modelsvc/evaluation.py); a version never evaluated (a zero-shot version no fine-tuned
one was compared with) or evaluated before a figure was recorded has nulls there.

`live_section` measures the ACTIVE version on the real stream, from the suggestion the server recorded when it
served an item (Annotation.suggestion, `{"model_version", "kind", "value", "confidence"}`):

- "gold": every answer to a gold item that was served with a suggestion of that version is one trial, the
  suggestion against the item's gold value. It does not depend on what the annotator answered, so it is the
  unbiased figure (answers to one gold item share its suggestion: they are not independent trials).
- "final": the suggestion served with each decided item's FIRST counting annotation against the item's final
  label, over the last TANDEM_LIVE_LAST_N decided items (by the final label's creation) whose first counting
  annotation carried a suggestion of that version. Automation bias inflates it: annotators who accept a wrong
  suggestion make the final label agree with the model.

A trial scores as a gold answer does (annotation/services/gold.py, `gold_answer_score`): exact match for
single- and multi-label, the share of whitespace tokens labeled alike for spans. Accuracy is the mean score,
with a 95 % Wilson interval (statsmodels); n 0 gives null accuracy and interval.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection

from annotation.models import Project
from annotation.models.project import TaskType
from annotation.quality.window import Window
from annotation.services.gold import gold_answer_score
from modelsvc.models import ModelVersion, VersionKind, VersionStatus

Trial = tuple[int, float]  # (item id, score in [0, 1])


def wilson(successes: float, n: int) -> tuple[float | None, list[float | None]]:
    """The proportion and its 95 % Wilson interval; (None, [None, None]) when n is 0."""
    if n == 0:
        return None, [None, None]
    from statsmodels.stats.proportion import (  # type: ignore[import-untyped, unused-ignore]
        proportion_confint,  # heavy: imported when metrics compute
    )

    lo, hi = proportion_confint(successes, n, alpha=0.05, method="wilson")
    return successes / n, [float(lo), float(hi)]


def accuracy_block(scores: Iterable[float]) -> dict[str, Any]:
    """{"n", "accuracy", "ci"} of trial scores."""
    values = list(scores)
    accuracy, ci = wilson(float(sum(values)), len(values))
    return {"n": len(values), "accuracy": accuracy, "ci": ci}


def _json(value: Any) -> Any:
    # Django hands jsonb to raw cursors undecoded (it decodes in JSONField.from_db_value)
    return json.loads(value) if isinstance(value, str) else value


def _trial_sql(task_type: str, suggested: str, truth: str, text: str) -> str:
    """The columns (score, suggested, truth, text) of a trial. Single- and multi-label are scored in the database
    by gold_answer_score's rule (the labels equal; the label sets contain each other, whatever their order), so
    no JSON document reaches Python; spans need the text and come back to be scored by gold_answer_score."""
    if task_type == TaskType.CLASSIFICATION:
        return f"({suggested} -> 'label' IS NOT DISTINCT FROM {truth} -> 'label')::int, NULL, NULL, NULL"
    if task_type == TaskType.MULTILABEL:
        s, t = f"coalesce({suggested} -> 'labels', '[]')", f"coalesce({truth} -> 'labels', '[]')"
        return f"coalesce({s} @> {t} AND {s} <@ {t}, false)::int, NULL, NULL, NULL"
    return f"NULL::int, {suggested}, {truth}, {text}"


def _trials(task_type: str, rows: list[tuple[Any, ...]]) -> list[Trial]:
    """(item id, score, suggested, truth, text) rows as trials, spans scored here."""
    return [
        (
            item_id,
            float(score)
            if score is not None
            else gold_answer_score(task_type=task_type, text=text or "", answer=_json(suggested), gold=_json(truth)),
        )
        for item_id, score, suggested, truth, text in rows
    ]


def _window_sql(column: str, window: Window) -> tuple[str, list[Any]]:
    sql, params = "", []
    if window.start is not None:
        sql += f" AND {column} >= %s"
        params.append(window.start)
    if window.end is not None:
        sql += f" AND {column} < %s"
        params.append(window.end)
    return sql, params


def gold_trials(project: Project, window: Window, version: int) -> list[Trial]:
    """Answers to gold items (answered inside the window) served with a suggestion of `version`: the suggestion
    scored against the gold value, one trial per answer."""
    where, params = _window_sql("a.created_at", window)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT a.item_id, {_trial_sql(project.task_type, "(a.suggestion -> 'value')", "f.value", "i.data ->> 'text'")}
            FROM annotation_annotation a
            JOIN annotation_item i ON i.id = a.item_id
            JOIN annotation_finallabel f ON f.item_id = a.item_id AND f.source = 'gold'
            WHERE i.project_id = %s AND i.is_gold AND a.suggestion ->> 'model_version' = %s
              AND a.suggestion ->> 'kind' IS DISTINCT FROM 'imported' {where}
            """,  # noqa: S608 - only fixed SQL fragments are formatted in; values are parameters
            [project.pk, str(version), *params],
        )
        rows = cursor.fetchall()
    return _trials(project.task_type, rows)


def final_trials(project: Project, window: Window, version: int, limit: int | None = None) -> list[Trial]:
    """Decided non-gold items (decided inside the window) whose first counting annotation was served with a
    suggestion of `version`: that suggestion scored against the final label, one trial per item, the most
    recently decided first; at most `limit`."""
    spans = project.task_type == TaskType.SPANS
    where, params = _window_sql("f.created_at", window)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT item_id, {_trial_sql(project.task_type, "(suggestion -> 'value')", "final", "text")} FROM (
                SELECT DISTINCT ON (a.item_id) a.item_id, a.suggestion, f.value AS final, f.created_at AS decided,
                       {"i.data ->> 'text'" if spans else "NULL"} AS text
                FROM annotation_annotation a
                JOIN annotation_item i ON i.id = a.item_id
                JOIN annotation_finallabel f ON f.item_id = a.item_id AND f.source <> 'gold'
                WHERE i.project_id = %s AND NOT i.is_gold AND a.counts {where}
                ORDER BY a.item_id, a.created_at, a.id
            ) first
            WHERE suggestion ->> 'model_version' = %s AND suggestion ->> 'kind' IS DISTINCT FROM 'imported'
            ORDER BY decided DESC, item_id DESC
            {"LIMIT %s" if limit is not None else ""}
            """,  # noqa: S608 - only fixed SQL fragments are formatted in; values are parameters
            [project.pk, *params, str(version), *([limit] if limit is not None else [])],
        )
        rows = cursor.fetchall()
    return _trials(project.task_type, rows)


def active_version(project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, status=VersionStatus.ACTIVE).first()


def live_section(project: Project, window: Window) -> dict[str, Any]:
    """The active version's live accuracy against gold values and against final labels (module docstring)."""
    active = active_version(project)
    if active is None:
        empty = accuracy_block([])
        return {"model_version": None, "gold": empty, "final": dict(empty)}
    gold = gold_trials(project, window, active.version)
    final = final_trials(project, window, active.version, limit=settings.TANDEM_LIVE_LAST_N)
    return {
        "model_version": active.version,
        "gold": accuracy_block(score for _, score in gold),
        "final": accuracy_block(score for _, score in final),
    }


def model_section(project: Project) -> list[dict[str, Any]]:
    """Every version's validation metrics, newest first (nulls where a version has none)."""
    rows = []
    for version in ModelVersion.objects.filter(project=project).order_by("-version"):
        metrics = version.metrics or {}
        rows.append(
            {
                "model_version": version.version,
                "status": version.status,
                "accuracy": metrics.get("accuracy"),
                "macro_f1": metrics.get("macro_f1"),
                "ece": metrics.get("ece"),
                "per_label_f1": metrics.get("per_label_f1"),
                "confusion": metrics.get("confusion_matrix"),
                "reliability": metrics.get("reliability"),
            }
        )
    return rows


def learning_curve_section(project: Project) -> list[dict[str, Any]]:
    """Validation accuracy against the number of training labels, per fine-tuned version in version order."""
    versions = ModelVersion.objects.filter(project=project, kind=VersionKind.FINE_TUNED).order_by("version")
    return [
        {
            "model_version": version.version,
            "n_train": (version.metrics or {}).get("n_train"),
            "accuracy": (version.metrics or {}).get("accuracy"),
        }
        for version in versions
    ]
