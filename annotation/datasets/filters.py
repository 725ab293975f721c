"""A snapshot's definition checked and normalised (every key present, defaults filled in), and its filters as one
SQL condition over annotation_item `i` LEFT JOIN annotation_finallabel `fl` (docs/datasets.md, "Filters").

Only column names and fixed expressions are formatted into the SQL; every value the user gave is a bound
parameter."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from annotation.datasets.rows import pseudonym
from annotation.exceptions import InvalidInput
from annotation.models import Annotation, Project
from annotation.models.item import FinalLabelSource, ItemStatus
from annotation.models.project import TaskType

NAME_MAX = 200
MAX_ANNOTATORS = 1000  # each is looked up on its own (did they annotate here?)
RATIO_TOLERANCE = 1e-6
GOLD_CHOICES = ("include", "exclude", "only")
DATE_KEYS = ("created_after", "created_before", "decided_after", "decided_before")

FILTER_DEFAULTS: dict[str, Any] = {
    "status": [ItemStatus.APPROVED.value],
    "source": [],
    "min_agreement": None,
    "labels": [],
    "annotators": [],
    "created_after": None,
    "created_before": None,
    "decided_after": None,
    "decided_before": None,
    "meta": {},
    "gold": "include",
}
SPLIT_DEFAULTS: dict[str, Any] = {
    "train": 0.8,
    "validation": 0.1,
    "test": 0.1,
    "seed": 0,
    "stratify": True,
    "group_by": None,
}
BODY_KEYS = ("name", "filters", "split", "pseudonymize")


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, field: str, message: str) -> None:
        self.items.append({"field": field, "message": message})


def _any_of(raw: Any, field: str, errors: _Errors) -> list[Any] | None:
    """A filter that takes one value or a list of them (any of): as a list; None when it is neither."""
    if raw is None:
        return []
    values = raw if isinstance(raw, list) else [raw]
    if any(isinstance(v, dict | list) for v in values):
        errors.add(field, "A value or a list of values.")
        return None
    return values


def _choices(raw: Any, field: str, allowed: list[str], errors: _Errors) -> list[str]:
    values = _any_of(raw, field, errors)
    if values is None:
        return []
    bad = [v for v in values if v not in allowed]
    if bad:
        errors.add(field, f"Unknown: {', '.join(map(str, bad))}. One or more of {', '.join(allowed)}.")
        return []
    return sorted(set(values), key=allowed.index)


def _when(raw: Any, field: str, errors: _Errors) -> str | None:
    """An ISO 8601 date (midnight UTC) or datetime (naive: UTC), normalised to an ISO datetime string."""
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            moment = parse_datetime(raw)
            day = None if moment is not None else parse_date(raw)
        except ValueError:
            moment, day = None, None
        if day is not None:
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if moment is not None:
            if timezone.is_naive(moment):
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    errors.add(field, "An ISO 8601 date or date-time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z.")
    return None


def _annotators(raw: Any, project: Project, errors: _Errors) -> list[tuple[int, str]]:
    """(user id, username) of the users named (username or id) who annotated in the project; unknown -> 400."""
    values = _any_of(raw, "filters.annotators", errors)
    if not values:
        return []
    if len(values) > MAX_ANNOTATORS:
        errors.add("filters.annotators", f"At most {MAX_ANNOTATORS} annotators.")
        return []
    names = [v for v in values if isinstance(v, str)]
    ids = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    odd = [v for v in values if not isinstance(v, str) and (not isinstance(v, int) or isinstance(v, bool))]
    if odd:
        errors.add("filters.annotators", "Usernames or user ids.")
        return []
    named = get_user_model().objects.filter(Q(username__in=names) | Q(pk__in=[i for i in ids if 0 < i < 2**31]))
    candidates = list(named.values_list("pk", "username"))
    # who of them annotated here (counting annotations, as the filter reads them): one EXISTS per candidate
    annotated = {
        pk
        for pk, _ in candidates
        if Annotation.objects.filter(annotator_id=pk, item__project=project, counts=True).exists()
    }
    found = [(pk, name) for pk, name in candidates if pk in annotated]
    known_names = {name for _, name in found}
    known_ids = {pk for pk, _ in found}
    unknown = [n for n in names if n not in known_names] + [str(i) for i in ids if i not in known_ids]
    if unknown:
        errors.add("filters.annotators", f"Nobody of these annotated in this project: {', '.join(unknown)}.")
        return []
    return sorted(set(found))


def _fraction(raw: Any, field: str, errors: _Errors) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or not 0 <= raw <= 1:
        errors.add(field, "A number from 0 to 1.")
        return None
    return float(raw)


def _unknown(raw: dict[str, Any], allowed: Any, prefix: str, errors: _Errors) -> None:
    for key in sorted(set(raw) - set(allowed), key=str):
        errors.add(f"{prefix}{key}", "Unknown field.")


def filters_normalize(raw: Any, *, project: Project, pseudonymize: bool, errors: _Errors) -> tuple[dict, list[int]]:
    """The filters with every key present, and the user ids of the `annotators` filter. With `pseudonymize` the
    stored annotators are their pseudonyms, so that a snapshot that hides names does not list them."""
    out = copy.deepcopy(FILTER_DEFAULTS)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.add("filters", "An object.")
        return out, []
    _unknown(raw, FILTER_DEFAULTS, "filters.", errors)
    if "status" in raw:
        out["status"] = _choices(raw["status"], "filters.status", list(ItemStatus.values), errors)
    if "source" in raw:
        out["source"] = _choices(raw["source"], "filters.source", list(FinalLabelSource.values), errors)
    if "labels" in raw:
        out["labels"] = _choices(raw["labels"], "filters.labels", project.label_names, errors)
    if raw.get("min_agreement") is not None:
        out["min_agreement"] = _fraction(raw["min_agreement"], "filters.min_agreement", errors)
    annotator_ids: list[int] = []
    if "annotators" in raw:
        found = _annotators(raw["annotators"], project, errors)
        annotator_ids = [pk for pk, _ in found]
        if pseudonymize:
            names = sorted(
                pseudonym(secret=settings.SECRET_KEY, project_id=project.pk, user_id=pk) for pk in annotator_ids
            )
        else:
            names = sorted(name for _, name in found)
        out["annotators"] = names
    for key in DATE_KEYS:
        if key in raw:
            out[key] = _when(raw[key], f"filters.{key}", errors)
    if "meta" in raw and raw["meta"] is not None:
        meta = raw["meta"]
        if not isinstance(meta, dict) or any(
            not isinstance(k, str) or isinstance(v, dict | list) or (isinstance(v, float) and not math.isfinite(v))
            for k, v in meta.items()
        ):
            errors.add("filters.meta", "A flat object: {field: value} with string, number, boolean or null values.")
        elif "text" in meta:
            errors.add("filters.meta.text", "The text is not a metadata field.")
        else:
            out["meta"] = dict(sorted(meta.items()))
    if "gold" in raw and raw["gold"] is not None:
        if raw["gold"] not in GOLD_CHOICES:
            errors.add("filters.gold", f"One of {', '.join(GOLD_CHOICES)}.")
        else:
            out["gold"] = raw["gold"]
    return out, annotator_ids


def split_normalize(raw: Any, errors: _Errors) -> dict[str, Any]:
    out = copy.deepcopy(SPLIT_DEFAULTS)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.add("split", "An object.")
        return out
    _unknown(raw, SPLIT_DEFAULTS, "split.", errors)
    ok = True
    for key in ("train", "validation", "test"):
        if key in raw:
            value = _fraction(raw[key], f"split.{key}", errors)
            ok = ok and value is not None
            out[key] = value
    if ok and abs(out["train"] + out["validation"] + out["test"] - 1) > RATIO_TOLERANCE:
        errors.add("split", "train + validation + test must be 1.")
    if "seed" in raw:
        seed = raw["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            errors.add("split.seed", "A non-negative integer.")
        else:
            out["seed"] = seed
    if "stratify" in raw:
        if not isinstance(raw["stratify"], bool):
            errors.add("split.stratify", "true or false.")
        else:
            out["stratify"] = raw["stratify"]
    if raw.get("group_by") is not None:
        group_by = raw["group_by"]
        if not isinstance(group_by, str) or not group_by or len(group_by) > 200:
            errors.add("split.group_by", "The name of a metadata field.")
        elif group_by == "text":
            errors.add("split.group_by", "The text is not a metadata field.")
        else:
            out["group_by"] = group_by
    return out


def definition_normalize(*, project: Project, body: Any) -> dict[str, Any]:
    """The snapshot definition from a request body: {"name", "filters", "split", "pseudonymize", "annotator_ids"},
    normalised; 400 (InvalidInput) listing every problem with its field."""
    errors = _Errors()
    if not isinstance(body, dict):
        raise InvalidInput("Send a JSON object.", [{"field": None, "message": "A JSON object."}])
    _unknown(body, BODY_KEYS, "", errors)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_MAX or "\x00" in name:
        errors.add("name", f"A name of 1 to {NAME_MAX} characters.")
        name = ""
    pseudonymize = body.get("pseudonymize", False)
    if not isinstance(pseudonymize, bool):
        errors.add("pseudonymize", "true or false.")
        pseudonymize = False
    filters, annotator_ids = filters_normalize(
        body.get("filters"), project=project, pseudonymize=pseudonymize, errors=errors
    )
    split = split_normalize(body.get("split"), errors)
    if errors.items:
        raise InvalidInput("Invalid snapshot definition.", errors.items)
    return {
        "name": name.strip(),
        "filters": filters,
        "split": split,
        "pseudonymize": pseudonymize,
        "annotator_ids": annotator_ids,
    }


# ---------------------------------------------------------------- the SQL filter


def _label_condition(task_type: str) -> str:
    if task_type == TaskType.CLASSIFICATION:
        return "fl.value->>'label' = ANY(%(labels)s::text[])"
    if task_type == TaskType.MULTILABEL:
        return "(fl.value->'labels') ?| %(labels)s::text[]"
    return (
        "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(fl.value->'spans') = 'array' "
        "THEN fl.value->'spans' ELSE '[]'::jsonb END) s WHERE s->>'label' = ANY(%(labels)s::text[]))"
    )


def filter_sql(*, project: Project, filters: dict[str, Any], annotator_ids: list[int]) -> tuple[str, dict[str, Any]]:
    """(condition, params): the WHERE clause over `i` (annotation_item) LEFT JOIN `fl` (annotation_finallabel)
    selecting the snapshot's items. Agreement: the share of the item's counting annotations whose value equals its
    final label; an item without a counting annotation (or without a final label) has none, so any min_agreement
    above 0 leaves it out."""
    where = ["i.project_id = %(project)s"]
    params: dict[str, Any] = {"project": project.pk}
    if filters.get("status"):
        where.append("i.status = ANY(%(status)s::text[])")
        params["status"] = list(filters["status"])
    if filters.get("source"):
        where.append("fl.source = ANY(%(source)s::text[])")
        params["source"] = list(filters["source"])
    if filters.get("labels"):
        where.append(_label_condition(project.task_type))
        params["labels"] = list(filters["labels"])
    if annotator_ids:
        where.append(
            "EXISTS (SELECT 1 FROM annotation_annotation fa WHERE fa.item_id = i.id AND fa.counts "
            "AND fa.annotator_id = ANY(%(annotators)s::integer[]))"
        )
        params["annotators"] = list(annotator_ids)
    for key, column, op in (
        ("created_after", "i.created_at", ">="),
        ("created_before", "i.created_at", "<"),
        ("decided_after", "fl.updated_at", ">="),
        ("decided_before", "fl.updated_at", "<"),
    ):
        if filters.get(key):
            where.append(f"{column} {op} %({key})s::timestamptz")
            params[key] = filters[key]
    if filters.get("meta"):
        where.append("i.data @> %(meta)s::jsonb")
        params["meta"] = json.dumps(filters["meta"])
    if filters.get("gold") == "exclude":
        where.append("NOT i.is_gold")
    elif filters.get("gold") == "only":
        where.append("i.is_gold")
    if filters.get("min_agreement"):
        where.append(
            "(SELECT count(*) FILTER (WHERE aa.value = fl.value)::float8 / NULLIF(count(*), 0) "
            "FROM annotation_annotation aa WHERE aa.item_id = i.id AND aa.counts) >= %(min_agreement)s::float8"
        )
        params["min_agreement"] = float(filters["min_agreement"])
    return " AND ".join(where), params
