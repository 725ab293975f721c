"""The import service: parsing, row validation, and running a Job (redelivery, missing file)."""

import io
import json

import pytest

from annotation.exceptions import InvalidInput
from annotation.models import Item, Job
from annotation.services.importing import (
    Limits,
    RowError,
    format_detect,
    import_create,
    import_run,
    row_gold,
    row_validate,
    rows_parse,
)
from tests.conftest import make_project, make_user


def parse(data: bytes, fmt: str):
    return list(rows_parse(io.BytesIO(data), fmt, Limits(text_chars=1000, field_chars=1000)))


# ------------------------------------------------------------------ pure parsing


@pytest.mark.parametrize(
    ("filename", "requested", "head", "expected"),
    [
        ("a.JSONL", None, b"", "jsonl"),
        ("a.ndjson", None, b"", "jsonl"),
        ("a.csv", None, b"", "csv"),
        ("a.json", None, b"", "json"),
        (None, None, b"  \n[{", "json"),
        (None, None, b'\xef\xbb\xbf{"text"', "jsonl"),
        ("a.txt", "csv", b"", "csv"),
    ],
)
def test_format_detect(filename, requested, head, expected):
    assert format_detect(filename=filename, requested=requested, head=head) == expected


@pytest.mark.parametrize(
    ("filename", "requested", "head"), [("a.txt", None, b""), (None, "xml", b""), (None, None, b"text,a")]
)
def test_format_detect_refuses(filename, requested, head):
    with pytest.raises(InvalidInput):
        format_detect(filename=filename, requested=requested, head=head)


def test_json_list_line_numbers_follow_the_file():
    data = b'[\n  {"text": "a"},\n\n  {"text":\n "b"},\n  {"text": "c"}\n]\n'
    assert [(line, row["text"]) for line, row, _ in parse(data, "json")] == [(2, "a"), (4, "b"), (6, "c")]


def test_json_list_across_read_chunks(monkeypatch):
    import annotation.services.importing as importing

    monkeypatch.setattr(importing, "CHUNK", 7)
    rows = [{"text": f"row {i}", "n": i * 1234567} for i in range(20)]
    got = parse(json.dumps(rows, indent=1).encode(), "json")
    assert [row for _, row, problem in got] == rows
    assert all(problem == "" for _, _, problem in got)


def test_csv_multiline_quoted_field_keeps_start_line():
    data = b'text,k\n"one\ntwo",1\nthree,2\n'
    assert [(line, row) for line, row, _ in parse(data, "csv")] == [
        (2, {"text": "one\ntwo", "k": "1"}),
        (4, {"text": "three", "k": "2"}),
    ]


def test_csv_bom_header():
    got = parse(b"\xef\xbb\xbftext\nhello\n", "csv")
    assert [row for _, row, _ in got] == [{"text": "hello"}]


def test_jsonl_skips_blank_lines_but_counts_them():
    got = parse(b'{"text": "a"}\n\n{"text": "b"}\n', "jsonl")
    assert [(line, row["text"]) for line, row, _ in got] == [(1, "a"), (3, "b")]


def test_row_validate_good_row_derives_stable_external_id():
    ok = row_validate(1, {"text": "hi", "lang": "en"}, Limits(text_chars=10, field_chars=10))
    again = row_validate(9, {"lang": "en", "text": "hi"}, Limits(text_chars=10, field_chars=10))
    assert ok == again
    ext, data = ok
    assert ext.startswith("sha256:")
    assert data == {"text": "hi", "lang": "en"}
    assert row_validate(1, {"text": "hi", "external_id": 5}, Limits(10, 10))[0] == "5"


def test_row_validate_reports_every_problem():
    errors = row_validate(
        4, {"text": "", "external_id": {"a": 1}, "meta": "x" * 11}, Limits(text_chars=10, field_chars=10)
    )
    assert all(isinstance(e, RowError) and e.line == 4 for e in errors)
    assert {e.field for e in errors} == {"text", "external_id", "meta"}


# ------------------------------------------------------------------ running a Job


@pytest.fixture
def owner(db):
    return make_user("owner")


def create_job(project, owner, data: bytes, filename="x.jsonl", on_error=None, django_capture_on_commit_callbacks=None):
    return import_create(
        project=project,
        user=owner,
        chunks=[data],
        declared_size=len(data),
        filename=filename,
        requested_format=None,
        on_error=on_error,
    )


def test_import_run_is_idempotent_on_redelivery(owner):
    project = make_project(owner)
    job = create_job(project, owner, b'{"text": "a"}\n{"text": "b"}\n')
    assert job.status == "queued"
    assert job.kind == "import"
    done = import_run(job_id=job.pk)
    assert done.status == "succeeded"
    assert done.result["created"] == 2
    assert done.finished_at is not None
    assert done.progress == done.total
    assert import_run(job_id=job.pk) is None  # a finished job is ignored
    assert Item.objects.filter(project=project).count() == 2


def test_import_run_reruns_a_job_left_running(owner):
    project = make_project(owner)
    job = create_job(project, owner, b'{"text": "a"}\n')
    Job.objects.filter(pk=job.pk).update(status="running")
    assert import_run(job_id=job.pk).status == "succeeded"
    assert Item.objects.filter(project=project).count() == 1


def test_import_run_with_missing_file_fails_cleanly(owner):
    project = make_project(owner)
    job = create_job(project, owner, b'{"text": "a"}\n')
    from pathlib import Path

    Path(job.params["path"]).unlink()
    done = import_run(job_id=job.pk)
    assert done.status == "failed"
    assert done.error
    assert Item.objects.count() == 0


def test_upload_file_removed_after_run(owner):
    project = make_project(owner)
    job = create_job(project, owner, b'{"text": ""}\n')
    from pathlib import Path

    path = Path(job.params["path"])
    assert path.exists()
    assert import_run(job_id=job.pk).status == "failed"
    assert not path.exists()


@pytest.fixture
def progress_calls(monkeypatch):
    """Progress is published on a second connection ("jobs") on PostgreSQL; record it instead."""
    import annotation.services.importing as importing

    calls = []
    monkeypatch.setattr(importing, "_progress", lambda job_id, done: calls.append((job_id, done)))
    return calls


def test_batches_are_all_or_nothing(owner, settings, progress_calls):
    """A bad row after several full batches rolls back the batches already inserted."""
    settings.TANDEM_IMPORT_BATCH_SIZE = 2
    project = make_project(owner)
    rows = [{"text": f"t{i}"} for i in range(7)] + [{"text": ""}]
    job = create_job(project, owner, "".join(json.dumps(r) + "\n" for r in rows).encode())
    done = import_run(job_id=job.pk)
    assert done.status == "failed"
    [err] = done.result["errors"]
    assert (err["line"], err["field"], err["message"]) == (8, "text", "empty")
    assert progress_calls, "progress is published while batches are inserted"
    assert Item.objects.count() == 0


def test_batches_count_duplicates_across_batches(owner, settings, progress_calls):
    settings.TANDEM_IMPORT_BATCH_SIZE = 2
    project = make_project(owner)
    rows = [{"external_id": f"x{i % 3}", "text": f"t{i}"} for i in range(7)]
    job = create_job(project, owner, "".join(json.dumps(r) + "\n" for r in rows).encode())
    done = import_run(job_id=job.pk)
    assert done.status == "succeeded", done.result
    assert done.result["created"] == 3
    assert done.result["duplicates"] == 4
    assert Item.objects.count() == 3


def test_empty_json_list_fails_with_a_reason(owner):
    project = make_project(owner)
    job = create_job(project, owner, b"[]", filename="x.json")
    done = import_run(job_id=job.pk)
    assert done.status == "failed"
    assert done.result["errors"]


# ------------------------------------------------------------------ gold values (issue 13)


@pytest.mark.parametrize(
    ("row", "fmt", "expected"),
    [
        ({"text": "t"}, "jsonl", None),
        ({"text": "t", "gold": None}, "json", None),
        ({"text": "t", "gold": {"label": "b"}}, "jsonl", {"label": "b"}),
        ({"text": "t", "gold": ""}, "csv", None),
        ({"text": "t", "gold": "  "}, "csv", None),
        ({"text": "t", "gold": " b "}, "csv", {"label": "b"}),
        ({"text": "t", "gold": '{"label": "a"}'}, "csv", {"label": "a"}),
    ],
)
def test_row_gold_classification(db, row, fmt, expected):
    project = make_project(make_user(), labels=["a", "b"])
    assert row_gold(3, row, row["text"], project, fmt) == expected


@pytest.mark.parametrize(
    ("row", "fmt", "fields"),
    [
        ({"text": "t", "gold": {"label": "z"}}, "jsonl", ["gold.label"]),
        ({"text": "t", "gold": "b"}, "jsonl", ["gold"]),  # JSON rows carry a value, not a bare name
        ({"text": "t", "gold": "z"}, "csv", ["gold.label"]),
        ({"text": "t", "gold": "{bad"}, "csv", ["gold"]),
        ({"text": "t", "gold": {"label": "a", "x": 1}}, "json", ["gold"]),
    ],
)
def test_row_gold_errors_name_the_field_and_line(db, row, fmt, fields):
    project = make_project(make_user(), labels=["a", "b"])
    errors = row_gold(3, row, row["text"], project, fmt)
    assert isinstance(errors, list)
    assert all(isinstance(e, RowError) and e.line == 3 for e in errors)
    assert [e.field for e in errors] == fields


def test_gold_is_not_kept_in_the_item_data():
    assert row_validate(1, {"text": "hi", "gold": {"label": "a"}, "lang": "en"}, Limits(10, 10))[1] == {
        "text": "hi",
        "lang": "en",
    }
