"""The Label Studio bridge: import a Label Studio JSON export into a project, and write a project or a snapshot in
Label Studio's JSON format (docs/labelstudio.md has the mapping tables and what is dropped).

Import (`ls_import`, the import Job's run for ?format=labelstudio): the file is a JSON list of tasks, parsed as it
is read (importing.py's `_iter_json_list`), every task validated like a row, all of it written in ONE transaction
(a failed import writes nothing). Annotations keep their annotators: a Tandem user with the e-mail of
`completed_by`, else one inactive placeholder user per Label Studio annotator id (`ls-<id>`). All of an item's
annotations are kept, even beyond the project's overlap k (the overlap trigger is switched off for this
transaction only), and decide the item by consensus. Predictions become Prediction rows of an `imported`
ModelVersion per `model_version` string, and the suggestion that the item's annotations were made with.

Export: `ls_project_export_stream` (the plain export's format=labelstudio, real users, keyset batches) and
`ls_write_snapshot` (a snapshot's labelstudio file, from its canonical rows).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeGuard

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from annotation.datasets.rows import value_plain
from annotation.exceptions import InvalidInput
from annotation.models import Annotation, FinalLabel, Item, Job, Membership, Project
from annotation.models.item import FinalLabelSource, ItemStatus
from annotation.models.project import Role, TaskType
from annotation.services.importing import (
    FatalImportError,
    Limits,
    RowError,
    _finish,
    _iter_json_list,
    _progress,
    row_validate,
)
from annotation.services.submitting import consensus, suggestion_accepted
from annotation.services.values import value_validate
from annotation.storable import find_unstorable

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from annotation.models import Snapshot

DEFAULT_MODEL_VERSION = "labelstudio"  # the imported version of predictions without a `model_version`
PLACEHOLDER_PREFIX = "ls-"
FINAL_KEY, FINAL_SOURCE_KEY = "tandem_label", "tandem_label_source"  # the final label, in `data` (see export)
FROM_NAME, TO_NAME = "label", "text"  # the control and object tag names of the labeling config we export for
EXPORT_BATCH = 500
# result types of image, audio, video and time-series tags: such a task has no text for Tandem to label
MEDIA_RESULTS = frozenset(
    {
        "rectanglelabels",
        "rectangle",
        "polygonlabels",
        "polygon",
        "keypointlabels",
        "keypoint",
        "brushlabels",
        "brush",
        "ellipselabels",
        "ellipse",
        "videorectangle",
        "timeserieslabels",
        "audioplus",
        "bitmasklabels",
    }
)
# data fields that hold a reference to media, never text to label (when no text_field is given)
MEDIA_FIELDS = frozenset({"image", "img", "audio", "video", "pdf", "url", "html", "timeseries"})


# ------------------------------------------------------------------ values <-> Label Studio results


def _utf16_to_index(text: str, offset: int) -> int | None:
    """The code-point index of a UTF-16 code-unit offset (Label Studio's browser counts text in UTF-16 units, so
    its offsets run ahead of Python's after an astral character such as an emoji), None when it falls inside a
    character or past the end."""
    units = 0
    for i, ch in enumerate(text):
        if units == offset:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text) if units == offset else None


def _span_offsets(text: str, start: int, end: int, quoted: Any) -> tuple[int, int] | None:
    """(start, end) in code points: as given when `quoted` (value.text) is absent or matches, else read as UTF-16
    offsets when that makes them match; None when neither does."""
    if not isinstance(quoted, str) or text[start:end] == quoted:
        return start, end
    if any(ord(ch) > 0xFFFF for ch in text):
        s, e = _utf16_to_index(text, start), _utf16_to_index(text, end)
        if s is not None and e is not None and text[s:e] == quoted:
            return s, e
    return None


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class _Parsed:
    """What a list of Label Studio results says for the project's task type."""

    value: dict[str, Any] | None  # canonical; None: nothing to record (an empty classification)
    dropped: int = 0  # results of other control tags (relations, text areas, ratings...): not imported


def results_value(*, results: Any, project: Project, text: str, where: str, errors: list[tuple[str, str]]) -> _Parsed:
    """The canonical Tandem value of one annotation's or prediction's `result` list; problems are appended to
    `errors` as (field, message) with fields under `where` (e.g. "annotations[0].result[1].value.labels")."""
    task_type = project.task_type
    names = set(project.label_names)
    if not isinstance(results, list):
        errors.append((f"{where}.result", "wrong type: expected a list of results"))
        return _Parsed(None)
    wanted = "labels" if task_type == TaskType.SPANS else "choices"
    control = _control(results, wanted, names)
    if isinstance(control, list):  # several controls of the project's kind fit it: which one is meant is unclear
        errors.append(
            (f"{where}.result", f"several <{wanted.title()}> controls fit this project ({', '.join(control)[:200]})")
        )
        return _Parsed(None)
    choices: list[str] = []
    spans: list[dict[str, Any]] = []
    dropped = 0
    before = len(errors)
    for j, res in enumerate(results):
        at = f"{where}.result[{j}]"
        if not isinstance(res, dict):
            errors.append((at, "wrong type: expected an object"))
            continue
        kind = str(res.get("type", "")).lower()
        value = res.get("value")
        if kind in MEDIA_RESULTS:
            errors.append((f"{at}.type", f"'{kind}' is an image, audio or video result: Tandem projects label text"))
            continue
        if kind in ("choices", "labels") and kind != wanted and control is None:
            # only the other kind of control: the project's task type does not fit this export
            errors.append((f"{at}.type", f"a '{kind}' result does not fit a {task_type} project (expected '{wanted}')"))
            continue
        if kind != wanted or res.get("from_name") != control:
            # relations, textarea, rating, taxonomy, a document-level <Choices> beside an NER <Labels>, a second
            # <Choices> control: no Tandem counterpart in this project
            dropped += 1
            continue
        if not isinstance(value, dict):
            errors.append((f"{at}.value", "wrong type: expected an object"))
            continue
        listed = value.get(wanted)
        if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
            errors.append((f"{at}.value.{wanted}", "expected a list of label names"))
            continue
        unknown = [x for x in listed if x not in names]
        if unknown:
            errors.append((f"{at}.value.{wanted}", f"not a label of this project: {', '.join(unknown)[:200]}"))
            continue
        if kind == "choices":
            choices.extend(listed)
            continue
        start, end = value.get("start"), value.get("end")
        if not _is_int(start) or not _is_int(end) or start < 0 or end <= start:
            errors.append((f"{at}.value", "a span needs integer start < end (character offsets)"))
            continue
        offsets = _span_offsets(text, start, end, value.get("text"))
        if offsets is None:
            errors.append((f"{at}.value.text", f"does not match the text at {start}-{end}"))
            continue
        if offsets[1] > len(text):
            errors.append((f"{at}.value.end", f"{end} is past the end of the text ({len(text)} characters)"))
            continue
        if not listed:
            errors.append((f"{at}.value.labels", "a span needs a label"))
            continue
        # one span per label: a Label Studio region may carry several
        spans.extend({"start": offsets[0], "end": offsets[1], "label": name} for name in listed)
    if len(errors) > before:
        return _Parsed(None, dropped)
    if task_type == TaskType.CLASSIFICATION:
        distinct = list(dict.fromkeys(choices))
        if not distinct:
            return _Parsed(None, dropped)  # an empty (or foreign-only) result: nothing to record
        if len(distinct) > 1:
            errors.append((f"{where}.result", f"a classification project takes one choice, found {len(distinct)}"))
            return _Parsed(None, dropped)
        raw: dict[str, Any] = {"label": distinct[0]}
    elif task_type == TaskType.MULTILABEL:
        raw = {"labels": list(dict.fromkeys(choices))}
    else:
        raw = {"spans": list({(s["start"], s["end"], s["label"]): s for s in spans}.values())}
    try:
        canonical = value_validate(task_type=task_type, label_names=project.label_names, value=raw, text=text)
    except InvalidInput as exc:  # the one validation rule has the last word
        errors.extend((f"{where}.{e.get('field') or 'value'}", e["message"]) for e in exc.errors)
        return _Parsed(None, dropped)
    return _Parsed(canonical, dropped)


def _control(results: Any, wanted: str, names: set[str]) -> Any:
    """The `from_name` of the control whose results this project takes: the only control of the project's kind
    (`choices` or `labels`) in the results, or, among several, the only one whose values are all labels of the
    project (the others are dropped); a list of the candidates when that leaves more than one (or none)."""
    if not isinstance(results, list):
        return None
    of_kind = [r for r in results if isinstance(r, dict) and str(r.get("type", "")).lower() == wanted]
    controls = list(dict.fromkeys(r.get("from_name") for r in of_kind))
    if len(controls) <= 1:
        return controls[0] if controls else None

    def fits(name: Any) -> bool:
        for r in of_kind:
            if r.get("from_name") == name:
                value = r.get("value")
                listed = value.get(wanted) if isinstance(value, dict) else None
                if not isinstance(listed, list) or not all(isinstance(x, str) and x in names for x in listed):
                    return False
        return True

    fitting = [c for c in controls if fits(c)]
    return fitting[0] if len(fitting) == 1 else [str(c) for c in controls]


def value_results(task_type: str, value: Any, text: str, *, prefix: str) -> list[dict[str, Any]]:
    """A canonical (or plain-form) value as Label Studio results (control `label` on object `text`); ids are
    `prefix`-<n>, unique in their task."""
    value = _from_plain(task_type, value)
    if value is None:
        return []
    base = {"from_name": FROM_NAME, "to_name": TO_NAME}
    if task_type == TaskType.SPANS:
        out = []
        for n, span in enumerate(value.get("spans") or []):
            region: dict[str, Any] = {
                "start": span["start"],
                "end": span["end"],
                "text": text[span["start"] : span["end"]],
                "labels": [span["label"]],
            }
            result: dict[str, Any] = {"id": f"{prefix}-{n}", **base, "type": "labels", "value": region}
            if isinstance(span.get("score"), int | float):
                result["score"] = span["score"]
            out.append(result)
        return out
    if task_type == TaskType.CLASSIFICATION:
        if not isinstance(value.get("label"), str):
            return []
        chosen = [value["label"]]
    else:
        chosen = list(value.get("labels") or [])
    return [{"id": f"{prefix}-0", **base, "type": "choices", "value": {"choices": chosen}}]


def _from_plain(task_type: str, value: Any) -> dict[str, Any] | None:
    """The value form {"label"} / {"labels"} / {"spans"} of a value given in either that form or the plain form of
    a snapshot row (a name, a list of names, a list of spans)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    if task_type == TaskType.CLASSIFICATION:
        return {"label": value}
    if task_type == TaskType.MULTILABEL:
        return {"labels": list(value)}
    return {"spans": list(value)}


# ------------------------------------------------------------------ import: one task


@dataclass(frozen=True)
class Annotator:
    """Who made a Label Studio annotation: its user id and, where the export carries it, the e-mail."""

    ls_id: int | None
    email: str  # lower-cased; "" when absent

    @property
    def key(self) -> str:
        return f"email:{self.email}" if self.email else f"id:{self.ls_id}"


@dataclass
class LsAnnotation:
    annotator: Annotator
    value: dict[str, Any]
    lead_time_ms: int | None


@dataclass
class LsPrediction:
    name: str
    value: dict[str, Any]
    score: float | None


@dataclass
class LsTask:
    external_id: str
    data: dict[str, Any]
    annotations: list[LsAnnotation]
    predictions: list[LsPrediction]
    final: dict[str, Any] | None  # data.tandem_label, canonical
    dropped: int = 0


def _annotator(raw: Any) -> Annotator | str:
    """The Annotator of `completed_by` (an int id, or an object with "id" and "email"), or what is wrong."""
    if isinstance(raw, dict):
        ls_id, email = raw.get("id"), raw.get("email")
    else:
        ls_id, email = raw, None
    if isinstance(ls_id, str) and ls_id.strip().isdigit():
        ls_id = int(ls_id)
    if ls_id is not None and not _is_int(ls_id):
        return "expected a user id (an integer) or an object with id and email"
    email = email.strip().lower() if isinstance(email, str) and "@" in email else ""
    if ls_id is None and not email:
        return "missing: the Label Studio user id (or an object with id and email)"
    return Annotator(ls_id=ls_id, email=email)


def _score(raw: Any) -> float | str | None:
    """A prediction's confidence from its `score`: a number in [0, 1]; None when absent or outside that range
    (Label Studio allows any number there, e.g. a log-likelihood: it is not a probability)."""
    if raw is None:
        return None
    if not isinstance(raw, int | float) or isinstance(raw, bool) or not math.isfinite(raw):
        return "expected a number"
    return float(raw) if 0.0 <= raw <= 1.0 else None


def _text_of(data: dict[str, Any], text_field: str) -> tuple[str, Any] | tuple[None, str]:
    """(the data field holding the text, its value), or (None, the problem)."""
    if text_field:
        if text_field not in data:
            return None, f"missing: the text field '{text_field}' (?text_field=) is not in this task's data"
        return text_field, data[text_field]
    if "text" in data:
        return "text", data["text"]
    strings = [k for k, v in data.items() if isinstance(v, str) and k not in ("external_id", FINAL_SOURCE_KEY)]
    if len(strings) == 1 and strings[0].lower() not in MEDIA_FIELDS:
        return strings[0], data[strings[0]]
    if len(strings) == 1:
        return None, (
            f"the only string field is '{strings[0]}', a reference to media: Tandem labels text "
            "(pass ?text_field= if it really holds the text)"
        )
    found = ", ".join(sorted(strings)[:10]) or "none"
    return None, f"no 'text' field and not exactly one string field ({found}): pass ?text_field= to name it"


def task_parse(
    *, row: Any, line: int, project: Project, text_field: str, limits: Limits
) -> tuple[LsTask | None, list[RowError]]:
    """One Label Studio task as an LsTask, or every problem in it (RowErrors with fields such as `data.text` or
    `annotations[0].result[1].value.labels`)."""
    if not isinstance(row, dict):
        return None, [RowError(line, None, f"wrong type: expected a task object, found {type(row).__name__}")]
    data = row.get("data")
    if not isinstance(data, dict):
        return None, [
            RowError(
                line,
                "data",
                "missing: a task needs a data object" if data is None else "wrong type: expected an object",
            )
        ]
    key, text = _text_of(data, text_field)
    if key is None:
        return None, [RowError(line, f"data.{text_field}" if text_field else "data", str(text))]
    meta = {k: v for k, v in data.items() if k not in (key, "external_id", FINAL_KEY, FINAL_SOURCE_KEY)}
    ext = data.get("external_id")
    task_id = row.get("id")
    if ext in (None, "") and (_is_int(task_id) or (isinstance(task_id, str) and task_id)):
        ext = f"ls-{task_id}"  # else derived from the content, like the plain import
    checked = row_validate(line, {"text": text, "external_id": ext, **meta}, limits)
    if isinstance(checked, list):
        for err in checked:
            err.field = f"data.{key}" if err.field == "text" else f"data.{err.field}" if err.field else "data"
        return None, checked
    external_id, item_data = checked
    text = item_data["text"]
    problems: list[tuple[str, str]] = []
    # the plain import keeps some names for itself (gold, label...): here they are ordinary data fields
    for name in meta.keys() - item_data.keys():
        found = find_unstorable({name: meta[name]})
        size = len(json.dumps(meta[name], ensure_ascii=False))
        if found:
            problems.append((f"data.{found[0]}", found[1]))
        elif size > limits.field_chars:
            problems.append((f"data.{name}", f"over-long: {size} characters, the limit is {limits.field_chars}"))
        else:
            item_data[name] = meta[name]
    dropped = 0

    final = None
    if data.get(FINAL_KEY) is not None:
        try:
            final = value_validate(
                task_type=project.task_type,
                label_names=project.label_names,
                value=_from_plain(project.task_type, data[FINAL_KEY]),
                text=text,
            )
        except (InvalidInput, TypeError) as exc:
            message = exc.errors[0]["message"] if isinstance(exc, InvalidInput) and exc.errors else str(exc)
            problems.append((f"data.{FINAL_KEY}", message))

    annotations: dict[str, LsAnnotation] = {}
    raw_annotations = row.get("annotations") or []
    if not isinstance(raw_annotations, list):
        problems.append(("annotations", "wrong type: expected a list"))
        raw_annotations = []
    for i, ann in enumerate(raw_annotations):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            problems.append((where, "wrong type: expected an object"))
            continue
        if ann.get("was_cancelled") is True:
            continue  # a skipped task: Label Studio's "cancelled" annotation holds no label
        who = _annotator(ann.get("completed_by"))
        if isinstance(who, str):
            problems.append((f"{where}.completed_by", who))
            continue
        parsed = results_value(results=ann.get("result", []), project=project, text=text, where=where, errors=problems)
        dropped += parsed.dropped
        if parsed.value is None:
            continue
        lead = ann.get("lead_time")
        lead_ms = (
            round(lead * 1000)
            if isinstance(lead, int | float) and not isinstance(lead, bool) and 0 <= lead < 2e6
            else None
        )
        annotations.pop(who.key, None)  # the same annotator twice: the last one is kept
        annotations[who.key] = LsAnnotation(annotator=who, value=parsed.value, lead_time_ms=lead_ms)

    predictions: dict[str, LsPrediction] = {}
    raw_predictions = row.get("predictions") or []
    if not isinstance(raw_predictions, list):
        problems.append(("predictions", "wrong type: expected a list"))
        raw_predictions = []
    for i, pred in enumerate(raw_predictions):
        where = f"predictions[{i}]"
        if not isinstance(pred, dict):
            problems.append((where, "wrong type: expected an object"))
            continue
        name = pred.get("model_version")
        name = DEFAULT_MODEL_VERSION if name in (None, "") else str(name)[:200]
        score = _score(pred.get("score"))
        if isinstance(score, str):
            problems.append((f"{where}.score", score))
            continue
        parsed = results_value(results=pred.get("result", []), project=project, text=text, where=where, errors=problems)
        dropped += parsed.dropped
        if parsed.value is None:
            continue
        predictions.pop(name, None)
        predictions[name] = LsPrediction(name=name, value=parsed.value, score=score)

    if problems:
        return None, [RowError(line, f, m) for f, m in problems]
    return (
        LsTask(
            external_id=external_id,
            data=item_data,
            annotations=list(annotations.values()),
            predictions=list(predictions.values()),
            final=final,
            dropped=dropped,
        ),
        [],
    )


# ------------------------------------------------------------------ import: writing


def _stable_id(name: str) -> int:
    """A stable number for an annotator name (a pseudonym's own 8 hex digits; else the first 8 of its sha256)."""
    m = re.fullmatch(r"annotator-([0-9a-f]{8})", name)
    return int(m.group(1) if m else hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def prediction_scores(*, value: dict[str, Any], score: float | None, n_labels: int, measure: str) -> dict[str, Any]:
    """A Prediction row's probabilities and uncertainty columns from an imported prediction's one `score`.

    probabilities: the score for each predicted label (nothing is known of the others). With s the score:
    least_confidence = 1 - s; margin = min(1, 2 (1 - s)) (the rest of the mass on one other label, the worst case
    for the gap); entropy = the rest spread evenly over the other labels, normalised by log k. Without a score
    every column is 0 and there are no probabilities."""
    if score is None:
        return {"probabilities": {}, "least_confidence": 0.0, "margin": 0.0, "entropy": 0.0, "uncertainty": 0.0}
    if "label" in value:
        predicted = [value["label"]]
    elif "labels" in value:
        predicted = list(value["labels"])
    else:
        predicted = list(dict.fromkeys(s["label"] for s in value.get("spans", [])))
    rest = 1.0 - score
    k = max(n_labels, 2)
    entropy = 0.0
    if 0.0 < score < 1.0:
        entropy = -(score * math.log(score) + rest * math.log(rest / (k - 1))) / math.log(k)
    scores = {"least_confidence": rest, "margin": min(1.0, 2 * rest), "entropy": min(max(entropy, 0.0), 1.0)}
    return {"probabilities": {name: score for name in predicted}, **scores, "uncertainty": scores.get(measure, rest)}


@dataclass
class _Context:
    """What one import run has resolved so far (users, versions) and counted."""

    job: Job
    project: Project
    users: dict[str, int] = field(default_factory=dict)  # Annotator.key -> user id
    members: set[int] = field(default_factory=set)
    versions: dict[str, Any] = field(default_factory=dict)  # name -> ModelVersion
    created: int = 0
    duplicates: int = 0
    annotations: int = 0
    predictions: int = 0
    users_created: int = 0
    dropped: int = 0


def _resolve_users(ctx: _Context, annotators: Iterable[Annotator]) -> None:
    """Map each new Annotator to a user id: the user with its e-mail, else its placeholder `ls-<id>` (created,
    inactive, without a usable password, once); every one becomes a project member (annotator) when it is not."""
    todo = {a.key: a for a in annotators if a.key not in ctx.users}
    if not todo:
        return
    User = get_user_model()
    emails = {a.email for a in todo.values() if a.email}
    by_email: dict[str, int] = {}
    if emails:
        rows = (
            User.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=emails)
            .order_by("-is_active", "pk")
            .values_list("email_lower", "pk")
        )
        for email, pk in rows:
            by_email.setdefault(email, pk)
    placeholders: dict[str, Annotator] = {}
    for key, a in todo.items():
        if a.email and a.email in by_email:
            ctx.users[key] = by_email[a.email]
        elif a.ls_id is None:
            raise FatalImportError(0, f"no Tandem user has the e-mail {a.email} and its annotations carry no user id")
        else:
            placeholders[key] = a
    if placeholders:
        names = {key: f"{PLACEHOLDER_PREFIX}{a.ls_id}" for key, a in placeholders.items()}
        existing = {u.username: u for u in User.objects.filter(username__in=names.values())}
        new = []
        for username in sorted(set(names.values()) - set(existing)):
            user = User(username=username, is_active=False)
            user.set_unusable_password()
            new.append(user)
        if new:
            User.objects.bulk_create(new, ignore_conflicts=True)  # a concurrent import may create the same one
            ctx.users_created += len(new)
            existing = {u.username: u for u in User.objects.filter(username__in=names.values())}
        for key, username in names.items():
            user = existing[username]
            if user.is_active:
                raise FatalImportError(
                    0, f"the placeholder name {username} belongs to an active account: rename it and import again"
                )
            ctx.users[key] = user.pk
    wanted = {ctx.users[k] for k in todo} - ctx.members
    if wanted:
        Membership.objects.bulk_create(
            [Membership(project=ctx.project, user_id=uid, role=Role.ANNOTATOR) for uid in sorted(wanted)],
            ignore_conflicts=True,  # an existing member keeps their role
        )
        ctx.members |= wanted


def _version(ctx: _Context, name: str) -> Any:
    """The project's imported ModelVersion named `name` (created as a candidate, with the next version number,
    when it is new)."""
    from modelsvc.models import ModelVersion, VersionKind, VersionStatus
    from modelsvc.services.versions import _next_number, label_spec

    if name not in ctx.versions:
        version = ModelVersion.objects.filter(project=ctx.project, kind=VersionKind.IMPORTED, name=name).first()
        if version is None:
            # the project row lock orders version numbers with training's registrations (held to the commit)
            Project.objects.select_for_update().filter(pk=ctx.project.pk).first()
            # a concurrent import of the same name may have made it while we waited for the lock
            version = ModelVersion.objects.filter(project=ctx.project, kind=VersionKind.IMPORTED, name=name).first()
        if version is None:
            version = ModelVersion.objects.create(
                project=ctx.project,
                version=_next_number(ctx.project),
                name=name,
                kind=VersionKind.IMPORTED,
                base_model="labelstudio",
                labels=label_spec(ctx.project),
                task_type=ctx.project.task_type,
                status=VersionStatus.CANDIDATE,
            )
        ctx.versions[name] = version
    return ctx.versions[name]


def _write(ctx: _Context, tasks: list[LsTask]) -> None:
    """Insert a batch of valid tasks: items (ON CONFLICT DO NOTHING: an existing external_id is a duplicate and
    nothing of its task is written), their annotations, predictions and decisions."""
    # one INSERT may not name a key twice; a repeat in a later batch conflicts with the first like any duplicate
    seen: set[str] = set()
    fresh = []
    for task in tasks:
        if task.external_id in seen:
            ctx.duplicates += 1
        else:
            seen.add(task.external_id)
            fresh.append(task)
    if not fresh:
        return
    now = timezone.now()
    table = Item._meta.db_table
    values = ", ".join(["(%s, %s, %s, 'open', 0, false, 0, 0, %s)"] * len(fresh))
    params: list[Any] = []
    for task in fresh:
        params.extend((ctx.project.pk, task.external_id, json.dumps(task.data, ensure_ascii=False), now))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (project_id, external_id, data, status, priority, is_gold, "  # noqa: S608 - no user input in the SQL text
            f"annotation_count, lease_count, created_at) VALUES {values} "
            "ON CONFLICT (project_id, external_id) DO NOTHING RETURNING id, external_id",
            params,
        )
        ids = {ext: pk for pk, ext in cursor.fetchall()}
    ctx.created += len(ids)
    ctx.duplicates += len(fresh) - len(ids)
    new = [(ids[t.external_id], t) for t in fresh if t.external_id in ids]
    if not new:
        return
    _resolve_users(ctx, (a.annotator for _, t in new for a in t.annotations))
    # rows for plain INSERTs (the ORM's bulk_create and bulk_update spent most of an import's time compiling SQL)
    annotations: list[tuple[Any, ...]] = []
    predictions: list[tuple[Any, ...]] = []
    finals: list[tuple[Any, ...]] = []
    decided: list[tuple[Any, ...]] = []
    measure = ctx.project.uncertainty_measure
    n_labels = len(ctx.project.labels)
    for item_id, task in new:
        suggestion = None
        for pred in task.predictions:
            version = _version(ctx, pred.name)
            scores = prediction_scores(value=pred.value, score=pred.score, n_labels=n_labels, measure=measure)
            predictions.append(
                (
                    item_id,
                    version.pk,
                    _json(pred.value),
                    _json(scores["probabilities"]),
                    scores["least_confidence"],
                    scores["margin"],
                    scores["entropy"],
                    scores["uncertainty"],
                    now,
                )
            )
            if suggestion is None:  # the task's first prediction is the one its annotators were shown
                suggestion = {
                    "model_version": pred.name,
                    "kind": "imported",
                    "value": pred.value,
                    "confidence": pred.score,
                }
        by_user: dict[int, LsAnnotation] = {}
        for ann in task.annotations:  # two Label Studio accounts of one Tandem user: the last one is kept
            uid = ctx.users[ann.annotator.key]
            by_user.pop(uid, None)
            by_user[uid] = ann
        for uid, ann in by_user.items():
            annotations.append(
                (
                    item_id,
                    uid,
                    _json(ann.value),
                    ann.lead_time_ms,
                    suggestion_accepted(value=ann.value, suggestion=suggestion),
                    None if suggestion is None else _json(suggestion),
                    True,
                    "[]",
                    now,
                    now,
                )
            )
        status: str = ItemStatus.OPEN
        final: Any = None
        source = FinalLabelSource.CONSENSUS
        if by_user:
            status, final = consensus(values=[a.value for a in by_user.values()], project=ctx.project, item_id=item_id)
        if task.final is not None and (
            final is None or json.dumps(final, sort_keys=True) != json.dumps(task.final, sort_keys=True)
        ):
            # the exported final label (a review, an adjudication...) wins over this file's consensus
            status, final, source = ItemStatus.APPROVED, task.final, FinalLabelSource.IMPORTED
        if final is not None:
            finals.append((item_id, _json(final), str(source), now, now))
        if by_user or final is not None:
            decided.append((item_id, str(status), len(by_user)))
        ctx.dropped += task.dropped
    from modelsvc.models import Prediction

    with connection.cursor() as cursor:
        _insert(cursor, Annotation._meta.db_table, _ANNOTATION_COLUMNS, annotations)
        _insert(cursor, Prediction._meta.db_table, _PREDICTION_COLUMNS, predictions)
        _insert(cursor, FinalLabel._meta.db_table, ("item_id", "value", "source", "created_at", "updated_at"), finals)
        if decided:
            cursor.execute(
                f"UPDATE {table} AS i SET status = v.status, annotation_count = v.n FROM (VALUES "  # noqa: S608 - no user input in the SQL text
                + ", ".join(["(%s::bigint, %s::varchar, %s::smallint)"] * len(decided))
                + ") AS v(id, status, n) WHERE i.id = v.id",
                [value for row in decided for value in row],
            )
    ctx.annotations += len(annotations)
    ctx.predictions += len(predictions)


_ANNOTATION_COLUMNS = (
    "item_id",
    "annotator_id",
    "value",
    "lead_time_ms",
    "accepted_suggestion",
    "suggestion",
    "counts",
    "history",
    "created_at",
    "updated_at",
)
_PREDICTION_COLUMNS = (
    "item_id",
    "model_version_id",
    "value",
    "probabilities",
    "least_confidence",
    "margin",
    "entropy",
    "uncertainty",
    "created_at",
)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _insert(cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """INSERT the rows (JSON columns given as JSON text), a thousand a statement."""
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([one] * len(chunk)),  # noqa: S608 - no user input in the SQL text
            [value for row in chunk for value in row],
        )


class _Rollback(Exception):
    pass


def ls_import(*, job: Job) -> Job:
    """Run a claimed import Job whose file is a Label Studio JSON export (job.params: path, text_field, on_error).

    One transaction: on_error=reject (the default) writes nothing when any task is bad, and the Job fails with
    every error (row, field); skip imports the valid tasks. Re-importing a file adds nothing (existing
    external_ids are duplicates, their tasks skipped whole)."""
    params = job.params
    path = Path(params["path"])
    if not path.exists():
        return _finish(job, ok=False, error="The uploaded file is gone (already processed or removed).", result=None)
    project = job.project
    skip_bad = params.get("on_error") == "skip"
    text_field = params.get("text_field") or ""
    limits = Limits()
    cap = settings.TANDEM_IMPORT_MAX_ERRORS
    max_rows = settings.TANDEM_IMPORT_MAX_ROWS
    batch_size = min(settings.TANDEM_IMPORT_BATCH_SIZE, EXPORT_BATCH)
    errors: list[RowError] = []
    error_count = rows = 0
    fatal: FatalImportError | None = None
    ctx = _Context(job=job, project=project)

    def note(err: RowError) -> None:
        nonlocal error_count
        error_count += 1
        if len(errors) < cap:
            errors.append(err)

    try:
        with transaction.atomic(), open(path, "rb") as f:
            with connection.cursor() as cursor:
                # keep every imported annotation, even beyond the overlap k (migration 0012's switch)
                cursor.execute("SET LOCAL tandem.overlap_check = 'off'")
            batch: list[LsTask] = []
            # a task holds its annotations and predictions besides the row: 4 MiB more than a plain row may have
            max_row = limits.text_chars * 2 + limits.field_chars * 20 + (1 << 22)
            try:
                for line, row, problem in _iter_json_list(f, max_row_bytes=max_row):
                    rows += 1
                    if rows > max_rows:
                        raise FatalImportError(line, f"more than {max_rows} tasks (TANDEM_IMPORT_MAX_ROWS)")
                    if problem:
                        note(RowError(line, None, problem, rows))
                        continue
                    task, problems = task_parse(
                        row=row, line=line, project=project, text_field=text_field, limits=limits
                    )
                    for err in problems:
                        err.row = rows
                        note(err)
                    if task is None or (error_count and not skip_bad):
                        continue  # the import is lost anyway (reject): only collect the remaining errors
                    batch.append(task)
                    if len(batch) >= batch_size:
                        _write(ctx, batch)
                        batch = []
                        _progress(job.pk, f.tell())
                if batch and not (error_count and not skip_bad):
                    _write(ctx, batch)
            except FatalImportError as exc:
                fatal = exc
            if fatal is not None or (error_count and not skip_bad) or rows == 0:
                raise _Rollback
    except _Rollback:
        if fatal is not None:
            note(RowError(fatal.line, fatal.field, fatal.message))
        if rows == 0 and not error_count:
            note(RowError(1, None, "the file has no tasks"))
        result = {
            "created": 0,
            "duplicates": 0,
            "annotations": 0,
            "predictions": 0,
            "users_created": 0,
            "errors": [e.as_dict() for e in errors],
            "error_count": error_count,
            "rows": rows,
        }
        return _finish(
            job,
            ok=False,
            error=f"{error_count} bad task(s); nothing was imported (use on_error=skip to import the valid tasks).",
            result=result,
            path=path,
        )
    result = {
        "created": ctx.created,
        "duplicates": ctx.duplicates,
        "annotations": ctx.annotations,
        "predictions": ctx.predictions,
        "users_created": ctx.users_created,
        "model_versions": sorted(v.version for v in ctx.versions.values()),
        "dropped_results": ctx.dropped,
        "errors": [e.as_dict() for e in errors],
        "error_count": error_count,
        "rows": rows,
    }
    job = _finish(job, ok=True, error="", result=result, path=path)
    if ctx.created and settings.TANDEM_PRELABEL_ON_IMPORT:
        from modelsvc.services.prelabel import prelabel_start

        prelabel_start(project=job.project, user=job.created_by)
    return job


# ------------------------------------------------------------------ export


def _task_bytes(task: dict[str, Any], first: bool) -> bytes:
    return (b"\n" if first else b",\n") + json.dumps(task, ensure_ascii=False, separators=(",", ":")).encode()


def _annotation(ann_id: int, who: dict[str, Any], value: Any, task_type: str, text: str, truth: bool) -> dict:
    return {
        "id": ann_id,
        "completed_by": who,
        "result": value_results(task_type, value, text, prefix=f"a{ann_id}"),
        "was_cancelled": False,
        "ground_truth": truth,
    }


def _mark_ground_truth(annotations: list[dict[str, Any]], values: list[Any], final: Any) -> None:
    """ground_truth on the first annotation whose value is the final label (Label Studio's own notion of the
    reference annotation of a task)."""
    if final is None:
        return
    want = json.dumps(final, sort_keys=True)
    for ann, value in zip(annotations, values, strict=True):
        if json.dumps(value, sort_keys=True) == want:
            ann["ground_truth"] = True
            return


def ls_project_export_stream(*, project: Project, items: QuerySet[Item]) -> Iterator[bytes]:
    """A project's items (already filtered by the caller) as a Label Studio JSON list of tasks, streamed in
    keyset batches by id (constant memory; three queries a batch, plain rows rather than model instances):
    counting annotations by their users ({"id", "email"}), the item's current suggestion and its imported
    predictions, the final label in data.tandem_label."""
    from modelsvc.models import Prediction, VersionKind

    task_type = project.task_type
    base = items.order_by("pk").values_list(
        "pk", "external_id", "data", "prediction", "final_label__value", "final_label__source"
    )
    yield b"["
    first, last = True, 0
    while True:
        batch = list(base.filter(pk__gt=last)[:EXPORT_BATCH])
        if not batch:
            break
        ids = [row[0] for row in batch]
        annotations: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for item_id, *ann in (
            Annotation.objects.filter(item_id__in=ids, counts=True)
            .order_by("id")
            .values_list(
                "item_id",
                "pk",
                "value",
                "annotator_id",
                "annotator__username",
                "annotator__email",
                "annotator__is_active",
            )
        ):
            annotations[item_id].append(tuple(ann))
        predictions: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for item_id, *pred in (
            Prediction.objects.filter(item_id__in=ids, model_version__kind=VersionKind.IMPORTED)
            .order_by("model_version__version")
            .values_list("item_id", "model_version__name", "value", "probabilities")
        ):
            predictions[item_id].append(tuple(pred))
        for row in batch:
            yield _task_bytes(_project_task(row, annotations[row[0]], predictions[row[0]], task_type), first)
            first = False
        last = batch[-1][0]
    yield b"\n]\n"


def _project_task(
    row: tuple[Any, ...], annotations: list[tuple[Any, ...]], imported: list[tuple[Any, ...]], task_type: str
) -> dict[str, Any]:
    item_id, external_id, item_data, current, final, source = row
    text = item_data.get("text", "")
    data = {"text": text, **{k: v for k, v in item_data.items() if k != "text"}, "external_id": external_id}
    if final is not None:
        data[FINAL_KEY] = value_plain(task_type, final)  # the plain form a snapshot row's label has
        data[FINAL_SOURCE_KEY] = source
    out = [
        _annotation(pk, _completed_by(user_id, username, email, active), value, task_type, text, False)
        for pk, value, user_id, username, email, active in annotations
    ]
    _mark_ground_truth(out, [a[1] for a in annotations], final)
    predictions = []
    if isinstance(current, dict) and isinstance(current.get("value"), dict):
        predictions.append(
            {
                "model_version": str(current.get("model_version", "")),
                "score": current.get("confidence"),
                "result": value_results(task_type, current["value"], text, prefix="p0"),
            }
        )
    for n, (name, value, probabilities) in enumerate(imported, 1):
        scores = [p for p in (probabilities or {}).values() if isinstance(p, int | float)]
        predictions.append(
            {
                "model_version": name,
                "score": max(scores) if scores else None,
                "result": value_results(task_type, value, text, prefix=f"p{n}"),
            }
        )
    return {"id": item_id, "data": data, "annotations": out, "predictions": predictions}


def _completed_by(user_id: int, username: str, email: str, active: bool) -> dict[str, Any]:
    """A user as Label Studio's completed_by: a placeholder made by an import goes back out under its Label Studio
    id (so a file that went through Tandem names the same annotators), anyone else under their own id."""
    ls_id = _placeholder_id(username, active)
    if ls_id is not None:
        return {"id": ls_id, "email": ""}
    return {"id": user_id, "email": email or ""}


def _placeholder_id(username: str, active: bool) -> int | None:
    """The Label Studio id of a placeholder user made by an import (inactive, named ls-<id>), else None."""
    m = re.fullmatch(rf"{PLACEHOLDER_PREFIX}(\d+)", username)
    return int(m.group(1)) if m and not active else None


_DATA_KEYS = (
    "text",
    "external_id",
    "split",
    FINAL_KEY,
    FINAL_SOURCE_KEY,
)  # a meta field of such a name keeps its column


def ls_write_snapshot(*, snapshot: Snapshot, rows: Iterator[dict[str, Any]], out: BinaryIO) -> None:
    """A snapshot's canonical rows as a Label Studio JSON list of tasks (task id = row number). Annotators are
    {"id": a stable number from the annotator name, "email"}: the e-mail of the user of that name when the
    snapshot names users (looked up as the file is written, a batch of rows at a time; an import's placeholder
    goes out under its Label Studio id, as in the project export), "" when it pseudonymizes. The final label is
    data.tandem_label (plain form) and ground_truth on an annotation equal to it; the row's suggestion is the
    task's prediction."""
    schema = snapshot.schema or {}
    task_type = schema.get("task_type") or snapshot.project.task_type
    meta = [(m["field"], m["column"]) for m in schema.get("meta", [])]
    people: dict[str, dict[str, Any]] = {}  # annotator name -> completed_by
    counter = {"task": 0, "annotation": 0}
    out.write(b"[")

    def write(batch: list[dict[str, Any]]) -> None:
        names = {a["annotator"] for r in batch for a in r.get("annotations") or []} - set(people)
        found: dict[str, Any] = {}
        if names and not snapshot.pseudonymize:
            found = {u.username: u for u in get_user_model().objects.filter(username__in=names)}
        for name in names:
            user = found.get(name)
            ls_id = _placeholder_id(user.username, user.is_active) if user is not None else None
            if ls_id is not None:
                people[name] = {"id": ls_id, "email": ""}
            else:  # a number of the name, not a database id: the file says nothing the snapshot does not
                people[name] = {"id": _stable_id(name), "email": (user.email or "") if user is not None else ""}
        for row in batch:
            counter["task"] += 1
            out.write(_task_bytes(_snapshot_task(row, counter, task_type, meta, people), counter["task"] == 1))

    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= EXPORT_BATCH:
            write(batch)
            batch = []
    write(batch)
    out.write(b"\n]\n")


def _snapshot_task(
    row: dict[str, Any],
    counter: dict[str, int],
    task_type: str,
    meta: list[tuple[str, str]],
    people: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    text = row["text"]
    data: dict[str, Any] = {"text": text}
    for name, column in meta:
        if row.get(column) is not None:
            data[column if name in _DATA_KEYS else name] = row[column]
    data["external_id"] = row["external_id"]
    data["split"] = row.get("split")
    if row.get("label") is not None:
        data[FINAL_KEY] = row["label"]
        data[FINAL_SOURCE_KEY] = row.get("label_source")
    annotations, values = [], []
    for a in row.get("annotations") or []:
        counter["annotation"] += 1
        who = people[a["annotator"]]
        annotations.append(_annotation(counter["annotation"], who, a["value"], task_type, text, False))
        values.append(_from_plain(task_type, a["value"]))
    _mark_ground_truth(annotations, values, _from_plain(task_type, row.get("label")))
    predictions = []
    suggestion = row.get("suggestion")
    if suggestion:
        predictions.append(
            {
                "model_version": str(suggestion.get("model_version")),
                "score": suggestion.get("confidence"),
                "result": value_results(task_type, suggestion.get("value"), text, prefix="p0"),
            }
        )
    return {"id": counter["task"], "data": data, "annotations": annotations, "predictions": predictions}
