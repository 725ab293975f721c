import json

import pytest

from annotation.models import Item, Job
from tests.annotation.apis.helpers import (
    assert_error,
    error_fields,
    import_post,
    import_rejected,
    job_json,
    jsonl,
    run_import,
)
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db


def texts(project):
    return list(Item.objects.filter(project=project).order_by("id").values_list("data__text", flat=True))


def assert_job_shape(job):
    assert set(job) >= {"kind", "status", "progress", "total", "error", "result"}, job
    assert job["kind"] == "import"
    assert job["status"] in ("queued", "running", "succeeded", "failed")
    assert isinstance(job["progress"], int)
    assert isinstance(job["error"], str)
    result = job["result"]
    assert set(result) >= {"created", "duplicates", "errors"}, result
    for err in result["errors"]:
        assert set(err) >= {"line", "field", "message"}, err


# ------------------------------------------------------------------ good imports


def test_json_list_body_queues_job_and_imports(project, manager_client, django_capture_on_commit_callbacks):
    rows = [{"external_id": "a", "text": "first", "source": "web"}, {"external_id": 7, "text": "second"}]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = import_post(manager_client, project, rows=rows)
    assert r.status_code == 202, r.content
    assert set(r.json()) == {"job"}
    assert len(callbacks) == 1, "the import task is queued after commit"
    job = job_json(manager_client, r.json()["job"])
    assert job["status"] == "queued"
    assert Item.objects.filter(project=project).count() == 0  # nothing until the worker runs

    from annotation.services.importing import import_run

    import_run(job_id=r.json()["job"])
    job = job_json(manager_client, r.json()["job"])
    assert_job_shape(job)
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 2
    assert job["result"]["duplicates"] == 0
    assert job["result"]["errors"] == []
    assert job["error"] == ""
    items = list(Item.objects.filter(project=project).order_by("id"))
    assert [(i.external_id, i.data) for i in items] == [
        ("a", {"text": "first", "source": "web"}),
        ("7", {"text": "second"}),
    ]
    assert all(i.status == "open" for i in items)


def test_jsonl_file_upload(project, manager_client):
    data = jsonl({"external_id": "x1", "text": "one"}, {"external_id": "x2", "text": "two", "lang": "en"}) + b"\n"
    job = run_import(manager_client, project, file=data, name="items.jsonl")
    assert_job_shape(job)
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 2
    assert texts(project) == ["one", "two"]


def test_csv_file_upload(project, manager_client):
    data = b'external_id,text,lang\nc1,"hello, world",en\nc2,"multi\nline",de\n'
    job = run_import(manager_client, project, file=data, name="items.csv")
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 2
    items = list(Item.objects.filter(project=project).order_by("id"))
    assert [(i.external_id, i.data) for i in items] == [
        ("c1", {"text": "hello, world", "lang": "en"}),
        ("c2", {"text": "multi\nline", "lang": "de"}),
    ]


def test_json_list_file_upload(project, manager_client):
    data = json.dumps([{"text": "a"}, {"text": "b"}, {"text": "c"}], indent=2).encode()
    job = run_import(manager_client, project, file=data, name="items.json")
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 3
    assert texts(project) == ["a", "b", "c"]


def test_same_file_twice_is_idempotent_on_external_id(project, manager_client):
    data = jsonl(*[{"external_id": f"k{i}", "text": f"t{i}"} for i in range(4)])
    first = run_import(manager_client, project, file=data, name="a.jsonl")
    assert first["result"]["created"] == 4
    second = run_import(manager_client, project, file=data, name="a.jsonl")
    assert second["status"] == "succeeded", second
    assert second["result"]["created"] == 0
    assert second["result"]["duplicates"] == 4
    assert Item.objects.filter(project=project).count() == 4


def test_same_external_id_keeps_the_first_row(project, manager_client):
    run_import(manager_client, project, rows=[{"external_id": "k", "text": "original"}])
    job = run_import(
        manager_client, project, rows=[{"external_id": "k", "text": "changed"}, {"external_id": "n", "text": "new"}]
    )
    assert job["result"]["created"] == 1
    assert job["result"]["duplicates"] == 1
    assert Item.objects.get(project=project, external_id="k").data["text"] == "original"


def test_rows_without_external_id_reimported_add_nothing(project, manager_client):
    rows = [{"text": "alpha"}, {"text": "beta", "meta": 1}]
    assert run_import(manager_client, project, rows=rows)["result"]["created"] == 2
    again = run_import(manager_client, project, rows=rows)
    assert again["status"] == "succeeded"
    assert again["result"]["created"] == 0
    assert again["result"]["duplicates"] == 2
    assert Item.objects.filter(project=project).count() == 2


def test_bom_and_blank_lines_in_jsonl_are_fine(project, manager_client):
    data = b"\xef\xbb\xbf" + jsonl({"text": "a"}) + b"\n  \n" + jsonl({"text": "b"})
    job = run_import(manager_client, project, file=data, name="x.jsonl")
    assert job["status"] == "succeeded", job
    assert texts(project) == ["a", "b"]


# ------------------------------------------------------------------ rejected imports (nothing created)


def only_error(errors, line, field):
    hits = [e for e in errors if e["line"] == line and e["field"] == field]
    assert hits, errors
    return hits[0]


def test_invalid_json_line_in_jsonl(project, manager_client):
    data = jsonl({"text": "ok"}) + b'{"text": "broken"\n' + jsonl({"text": "ok2"})
    errors = import_rejected(manager_client, project, file=data, name="x.jsonl")
    assert [e["line"] for e in errors] == [2]
    assert "json" in errors[0]["message"].lower()


def test_invalid_json_list_syntax(project, manager_client):
    data = b'[\n{"text": "a"},\n{"text": "b"}\n{"text": "c"}\n]'
    errors = import_rejected(manager_client, project, file=data, name="x.json")
    assert errors[0]["line"] == 4, errors
    assert "json" in errors[0]["message"].lower()


def test_invalid_json_list_body(project, manager_client):
    errors = import_rejected(
        manager_client, project, body=b'[{"text": "a"}, {"text": ', content_type="application/json"
    )
    assert "json" in errors[0]["message"].lower()


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ({"external_id": "b"}, "text", "missing"),
        ({"text": None}, "text", "missing"),
        ({"text": ""}, "text", "empty"),
        ({"text": "   \n"}, "text", "empty"),
        ({"text": 12}, "text", "type"),
        ({"text": ["a"]}, "text", "type"),
        ({"text": "x", "external_id": ["a"]}, "external_id", "type"),
        ({"text": "x", "external_id": 1.5}, "external_id", "type"),
        ({"text": "x", "external_id": True}, "external_id", "type"),
        ({"text": "a\u0000b"}, "text", "nul"),
        ({"text": "ok", "meta": "a\u0000"}, "meta", "nul"),
    ],
)
def test_bad_row_rejects_whole_jsonl_import(project, manager_client, row, field, words):
    data = jsonl({"external_id": "a", "text": "good"}, row, {"external_id": "c", "text": "good too"})
    errors = import_rejected(manager_client, project, file=data, name="x.jsonl")
    err = only_error(errors, 2, field)
    assert words in err["message"].lower(), err


def test_row_not_an_object(project, manager_client):
    data = jsonl({"text": "good"}, ["text", "x"], "just a string")
    errors = import_rejected(manager_client, project, file=data, name="x.jsonl")
    assert sorted(e["line"] for e in errors) == [2, 3]
    assert all("object" in e["message"].lower() for e in errors)


def test_row_not_an_object_in_json_list(project, manager_client):
    errors = import_rejected(manager_client, project, rows=[{"text": "good"}, 5])
    assert [e["line"] for e in errors] == [1]  # the test client sends the list on one line
    assert "object" in errors[0]["message"].lower()


def test_invalid_utf8_in_jsonl(project, manager_client):
    data = jsonl({"text": "good"}) + b'{"text": "caf\xe9"}\n'
    errors = import_rejected(manager_client, project, file=data, name="x.jsonl")
    assert errors[0]["line"] == 2
    assert "utf-8" in errors[0]["message"].lower()


def test_invalid_utf8_in_csv(project, manager_client):
    data = b"text\ngood\ncaf\xe9\n"
    errors = import_rejected(manager_client, project, file=data, name="x.csv")
    assert errors[0]["line"] == 3
    assert "utf-8" in errors[0]["message"].lower()


def test_invalid_utf8_in_json_list(project, manager_client):
    errors = import_rejected(manager_client, project, file=b'[{"text": "caf\xe9"}]', name="x.json")
    assert "utf-8" in errors[0]["message"].lower()


def test_raw_nul_byte_in_jsonl(project, manager_client):
    data = jsonl({"text": "good"}) + b'{"text": "a\x00b"}\n'
    errors = import_rejected(manager_client, project, file=data, name="x.jsonl")
    assert errors[0]["line"] == 2


def test_raw_nul_byte_in_csv(project, manager_client):
    data = b"text,meta\ngood,1\na\x00b,2\n"
    errors = import_rejected(manager_client, project, file=data, name="x.csv")
    assert errors[0]["line"] == 3
    assert errors[0]["field"] == "text"
    assert "nul" in errors[0]["message"].lower()


def test_over_long_text(project, manager_client, settings):
    settings.TANDEM_MAX_TEXT_CHARS = 10
    data = jsonl({"text": "short"}, {"text": "x" * 11})
    errors = import_rejected(manager_client, project, file=data, name="x.jsonl")
    err = only_error(errors, 2, "text")
    assert "long" in err["message"].lower()


def test_text_at_the_limit_is_accepted(project, manager_client, settings):
    settings.TANDEM_MAX_TEXT_CHARS = 10
    job = run_import(manager_client, project, file=jsonl({"text": "é" * 10}), name="x.jsonl")
    assert job["status"] == "succeeded", job


def test_csv_without_text_column(project, manager_client):
    errors = import_rejected(manager_client, project, file=b"id,body\n1,hello\n", name="x.csv")
    assert errors[0]["line"] == 1
    assert errors[0]["field"] == "text"


def test_csv_row_with_wrong_number_of_fields(project, manager_client):
    data = b"external_id,text\na,good\nb,too,many\nc\n"
    errors = import_rejected(manager_client, project, file=data, name="x.csv")
    assert sorted(e["line"] for e in errors) == [3, 4]
    assert all("field" in e["message"].lower() for e in errors)


def test_csv_empty_text(project, manager_client):
    errors = import_rejected(manager_client, project, file=b"external_id,text\na,good\nb,\n", name="x.csv")
    only_error(errors, 3, "text")


def test_all_bad_rows_are_reported_with_line_numbers(project, manager_client):
    data = jsonl({"text": "ok"}, {"text": ""}, {"text": "ok"}, {"nope": 1}, {"text": 3})
    errors = import_rejected(manager_client, project, file=data, name="x.jsonl")
    assert [(e["line"], e["field"]) for e in errors] == [(2, "text"), (4, "text"), (5, "text")]


def test_error_list_is_capped(project, manager_client, settings):
    settings.TANDEM_IMPORT_MAX_ERRORS = 3
    data = jsonl(*[{"text": ""} for _ in range(10)])
    errors = import_rejected(manager_client, project, file=data, name="x.jsonl")
    assert len(errors) == 3
    assert [e["line"] for e in errors] == [1, 2, 3]
    job = Job.objects.get()
    assert job.result.get("error_count", 10) == 10


def test_on_error_skip_imports_valid_rows_and_reports_bad(project, manager_client):
    data = jsonl({"text": "a"}, {"text": ""}, {"text": "c"}, "nope")
    job = run_import(manager_client, project, file=data, name="x.jsonl", query="?on_error=skip")
    assert_job_shape(job)
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 2
    assert sorted(e["line"] for e in job["result"]["errors"]) == [2, 4]
    assert texts(project) == ["a", "c"]


def test_on_error_skip_as_form_field(project, manager_client):
    data = jsonl({"text": "a"}, {"text": 5})
    job = run_import(manager_client, project, file=data, name="x.jsonl", form={"on_error": "skip"})
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 1


def test_on_error_skip_with_json_body(project, manager_client):
    job = run_import(manager_client, project, rows=[{"text": "a"}, {"text": ""}], query="?on_error=skip")
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 1
    assert len(job["result"]["errors"]) == 1


# ------------------------------------------------------------------ refused at once


def test_body_over_max_bytes_is_413(project, manager_client, settings):
    settings.TANDEM_IMPORT_MAX_BYTES = 200
    rows = [{"text": "x" * 50} for _ in range(10)]
    assert_error(import_post(manager_client, project, rows=rows), 413)
    assert_error(import_post(manager_client, project, file=jsonl(*rows), name="x.jsonl"), 413)
    assert Job.objects.count() == 0
    assert Item.objects.count() == 0


def test_jsonl_over_max_rows_is_413(project, manager_client, settings):
    settings.TANDEM_IMPORT_MAX_ROWS = 5
    ok = jsonl(*[{"text": f"t{i}"} for i in range(5)])
    too_many = jsonl(*[{"text": f"t{i}"} for i in range(6)])
    assert_error(import_post(manager_client, project, file=too_many, name="x.jsonl"), 413)
    assert Job.objects.count() == 0
    job = run_import(manager_client, project, file=ok, name="x.jsonl")
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 5


def test_json_list_over_max_rows_is_refused(project, manager_client, settings):
    settings.TANDEM_IMPORT_MAX_ROWS = 3
    rows = [{"text": f"t{i}"} for i in range(4)]
    r = import_post(manager_client, project, rows=rows)
    if r.status_code == 413:
        assert_error(r, 413)
    else:
        import_rejected(manager_client, project, rows=rows)
    assert Item.objects.count() == 0


def test_unknown_file_extension_is_400(project, manager_client):
    body = assert_error(import_post(manager_client, project, file=b"text\nhello\n", name="items.txt"), 400)
    assert "file" in error_fields(body)
    assert Job.objects.count() == 0


def test_unknown_on_error_is_400(project, manager_client):
    body = assert_error(import_post(manager_client, project, rows=[{"text": "a"}], query="?on_error=ignore"), 400)
    assert "on_error" in error_fields(body)
    assert Job.objects.count() == 0


def test_multipart_without_file_is_400(project, manager_client):
    r = manager_client.post(f"/api/projects/{project.pk}/import", {"other": "x"}, format="multipart")
    body = assert_error(r, 400)
    assert "file" in error_fields(body)


def test_empty_upload_is_400(project, manager_client):
    assert_error(import_post(manager_client, project, file=b"", name="x.jsonl"), 400)
    assert Job.objects.count() == 0


def test_import_annotator_403_outsider_404(project, annotator_client):
    assert_error(import_post(annotator_client, project, rows=[{"text": "a"}]), 403)
    assert_error(import_post(client_for(make_user()), project, rows=[{"text": "a"}]), 404)
    assert_error(import_post(annotator_client, project, file=jsonl({"text": "a"}), name="x.jsonl"), 403)
    assert Job.objects.count() == 0


def test_jobs_visible_to_members_only(project, manager_client, annotator_client):
    from tests.annotation.apis.helpers import member

    r = import_post(manager_client, project, rows=[{"text": "a"}])
    job_id = r.json()["job"]
    assert manager_client.get(f"/api/jobs/{job_id}").status_code == 200
    for role in ("reviewer", "engineer"):
        assert member(project, role=role)[1].get(f"/api/jobs/{job_id}").status_code == 200
    # annotators are blind (issue 13): only their own Jobs (a training Job's result holds the model's metrics)
    assert_error(annotator_client.get(f"/api/jobs/{job_id}"), 404)
    assert annotator_client.get(f"/api/projects/{project.pk}/jobs").json()["count"] == 0
    assert manager_client.get(f"/api/projects/{project.pk}/jobs").json()["count"] == 1
    assert_error(client_for(make_user()).get(f"/api/jobs/{job_id}"), 404)
    assert_error(client_for(make_user()).get(f"/api/jobs/{job_id}/"), 404)
    assert_error(manager_client.get("/api/jobs/99999999"), 404)


# ------------------------------------------------------------------ JSON that PostgreSQL cannot store


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (b'{"text": "a\\ud800b"}', "text"),  # a lone surrogate escape
        (b'{"text": "ok", "note": "\\udc00"}', "note"),
        (b'{"text": "ok", "score": NaN}', "score"),  # Python's json accepts NaN / Infinity; JSON does not
        (b'{"text": "ok", "score": -Infinity}', "score"),
        (b'{"text": "ok", "big": 1e400}', "big"),  # overflows to inf
    ],
)
def test_unstorable_json_rejects_import_with_row_error(project, manager_client, line, field):
    data = jsonl({"text": "good"}) + line + b"\n"
    errors = import_rejected(manager_client, project, file=data, name="x.jsonl")
    assert [e["line"] for e in errors] == [2], errors
    assert errors[0]["field"] in (field, None), errors  # None: refused by the JSON parser itself


def test_unstorable_json_in_json_list_rejects_import(project, manager_client):
    data = b'[\n{"text": "good"},\n{"text": "bad \\ud800"}\n]'
    errors = import_rejected(manager_client, project, file=data, name="x.json")
    assert errors[0]["line"] == 3, errors


def test_unstorable_json_skipped_under_on_error_skip(project, manager_client):
    data = jsonl({"text": "good"}) + b'{"text": "ok", "score": NaN}\n'
    job = run_import(manager_client, project, file=data, name="x.jsonl", query="?on_error=skip")
    assert job["status"] == "succeeded", job
    assert job["result"]["created"] == 1
    assert [e["line"] for e in job["result"]["errors"]] == [2]


# ------------------------------------------------------------------ gold values (issue 13)


def gold_rows(project):
    from annotation.models import FinalLabel

    items = Item.objects.filter(project=project).order_by("id")
    finals = dict(FinalLabel.objects.filter(item__project=project).values_list("item__external_id", "value"))
    sources = set(FinalLabel.objects.filter(item__project=project).values_list("source", flat=True))
    assert sources <= {"gold"}
    return [(i.external_id, i.is_gold, i.status, finals.get(i.external_id)) for i in items]


def test_jsonl_gold_rows_become_gold_items(project, manager_client, settings, monkeypatch):
    import annotation.services.importing as importing

    settings.TANDEM_IMPORT_BATCH_SIZE = 2  # gold rows in several batches
    monkeypatch.setattr(importing, "_progress", lambda job_id, done: None)  # published on another connection
    data = jsonl(
        {"external_id": "g1", "text": "one", "gold": {"label": "tech"}},
        {"external_id": "n1", "text": "two"},
        {"external_id": "n2", "text": "three", "gold": None},
        {"external_id": "g2", "text": "four", "gold": {"label": "sports"}, "topic": "politics", "src": "x"},
        {"external_id": "g3", "text": "five", "gold": {"label": "politics"}},
    )
    job = run_import(manager_client, project, file=data, name="gold.jsonl")
    assert job["status"] == "succeeded", job
    assert (job["result"]["created"], job["result"]["gold"]) == (5, 3)
    assert gold_rows(project) == [
        ("g1", True, "approved", {"label": "tech"}),
        ("n1", False, "open", None),
        ("n2", False, "open", None),
        ("g2", True, "approved", {"label": "sports"}),
        ("g3", True, "approved", {"label": "politics"}),
    ]
    g2 = Item.objects.get(project=project, external_id="g2")
    assert g2.data == {"text": "four", "topic": "politics", "src": "x"}  # `gold` is not kept in the data


def test_csv_gold_column(project, manager_client):
    data = b'external_id,text,gold\nc1,hello,tech\nc2,world,\nc3,again,"{""label"": ""sports""}"\n'
    job = run_import(manager_client, project, file=data, name="items.csv")
    assert job["status"] == "succeeded", job
    assert job["result"]["gold"] == 2
    assert gold_rows(project) == [
        ("c1", True, "approved", {"label": "tech"}),
        ("c2", False, "open", None),
        ("c3", True, "approved", {"label": "sports"}),
    ]
    assert Item.objects.get(project=project, external_id="c2").data == {"text": "world"}


def test_multilabel_and_span_gold():
    from tests.conftest import make_project

    owner = make_user()
    client = client_for(owner)
    ml = make_project(owner, task_type="multilabel", labels=["a", "b", "c"])
    data = b'text,gold\nx,"{""labels"": [""c"", ""a""]}"\n'
    assert run_import(client, ml, file=data, name="m.csv")["status"] == "succeeded"
    assert gold_rows(ml)[0][3] == {"labels": ["a", "c"]}  # canonical order
    errors = import_rejected(client, ml, file=b"text,gold\ny,a\n", name="m.csv")  # a bare name is single-label only
    assert [(e["line"], e["field"]) for e in errors] == [(2, "gold")]

    sp = make_project(owner, task_type="spans", labels=["PER"])
    good = {"text": "Ada", "gold": {"spans": [{"start": 0, "end": 3, "label": "PER"}]}}
    bad = {"text": "Bob", "gold": {"spans": [{"start": 0, "end": 9, "label": "PER"}]}}
    errors = import_rejected(client, sp, file=jsonl(good, bad), name="s.jsonl")
    assert [(e["line"], e["field"]) for e in errors] == [(2, "gold.spans[0].end")]
    assert run_import(client, sp, file=jsonl(good), name="s.jsonl")["result"]["gold"] == 1


def test_bad_gold_rows_are_row_errors(project, manager_client):
    data = jsonl(
        {"text": "ok", "gold": {"label": "tech"}},
        {"text": "unknown label", "gold": {"label": "cooking"}},
        {"text": "not an object", "gold": "tech"},
        {"text": "wrong key", "gold": {"labels": ["tech"]}},
    )
    errors = import_rejected(manager_client, project, file=data, name="g.jsonl")
    assert [(e["line"], e["field"]) for e in errors] == [(2, "gold.label"), (3, "gold"), (4, "gold"), (4, "gold.label")]
    csv_errors = import_rejected(manager_client, project, file=b'text,gold\na,"{oops"\nb,cooking\n', name="g.csv")
    assert [(e["line"], e["field"]) for e in csv_errors] == [(2, "gold"), (3, "gold.label")]

    job = run_import(manager_client, project, file=data, name="g.jsonl", query="?on_error=skip")
    assert (job["result"]["created"], job["result"]["gold"], job["result"]["error_count"]) == (
        1,
        1,
        4,
    )  # errors, not rows
    assert gold_rows(project) == [(Item.objects.get(project=project).external_id, True, "approved", {"label": "tech"})]


def test_reimport_with_gold_leaves_existing_items_alone(project, manager_client):
    run_import(manager_client, project, rows=[{"external_id": "k", "text": "t"}])
    job = run_import(
        manager_client,
        project,
        rows=[{"external_id": "k", "text": "t", "gold": {"label": "tech"}}, {"external_id": "m", "text": "u"}],
    )
    assert (job["result"]["created"], job["result"]["duplicates"], job["result"]["gold"]) == (1, 1, 0)
    assert gold_rows(project) == [("k", False, "open", None), ("m", False, "open", None)]
