"""GET /api/snapshots/{id}/download: every format through the API, read back with its reference reader;
Content-Length, ETag (the body's sha256), Range (206/416), If-None-Match (304), If-Range, bundles, access."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
import yaml

from annotation.datasets.formats import download_slug
from annotation.datasets.paths import canonical_path
from annotation.models.snapshot import SnapshotStatus
from tests.conftest import client_for, make_user
from tests.datasets_formats.conftest import canonical_rows, project_of, snapshot_make
from tests.datasets_formats.readers import conll_documents, csv_rows, hf_load, jsonl_rows, untar

pytestmark = pytest.mark.django_db


def url(snapshot, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/snapshots/{snapshot.pk}/download" + (f"?{query}" if query else "")


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def get(client, snapshot, headers=None, **params):
    response = client.get(url(snapshot, **params), headers=headers or {}, HTTP_ACCEPT="application/octet-stream")
    return response, body(response)


def _checked(response, data: bytes, content_type: str, ext: str, snapshot) -> None:
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert int(response["Content-Length"]) == len(data)
    assert response["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response["Accept-Ranges"] == "bytes"
    assert "private" in response["Cache-Control"]
    assert response["Content-Disposition"] == f'attachment; filename="{download_slug(snapshot)}.{ext}"'
    assert response["Link"] == f'</api/snapshots/{snapshot.pk}/download?format=card>; rel="describedby"'


def test_jsonl_is_the_canonical_file(owner_client, classification_snapshot):
    response, data = get(owner_client, classification_snapshot)  # jsonl is the default
    _checked(response, data, "application/x-ndjson", "jsonl", classification_snapshot)
    assert data == canonical_path(classification_snapshot).read_bytes()
    assert response["ETag"] == f'"{classification_snapshot.sha256}"'
    assert [r["external_id"] for r in jsonl_rows(data)] == ["c1", "c2", "c3", "c4"]
    assert download_slug(classification_snapshot) == f"news-classification-{classification_snapshot.pk}-release-1"


def test_csv_and_parquet(owner_client, multilabel_snapshot):
    import pyarrow.parquet as pq

    expected = jsonl_rows(canonical_path(multilabel_snapshot).read_bytes())
    response, data = get(owner_client, multilabel_snapshot, format="csv")
    _checked(response, data, "text/csv", "csv", multilabel_snapshot)
    _, rows = csv_rows(data, multilabel_snapshot.schema)
    assert [r["label"] for r in rows] == [r["label"] for r in expected]
    response, data = get(owner_client, multilabel_snapshot, format="parquet")
    _checked(response, data, "application/vnd.apache.parquet", "parquet", multilabel_snapshot)
    table = pq.read_table(io.BytesIO(data))
    assert table.column("label").to_pylist() == [r["label"] for r in expected]


def test_hf_conll_card_and_labelstudio(owner_client, spans_snapshot, tmp_path):
    response, data = get(owner_client, spans_snapshot, format="hf")
    _checked(response, data, "application/x-tar", "tar", spans_snapshot)
    untar(data, tmp_path / "hf")
    dd = hf_load(tmp_path / "hf" / download_slug(spans_snapshot))
    assert {split: ds.num_rows for split, ds in dd.items()} == {"train": 2, "validation": 1, "test": 2}

    response, data = get(owner_client, spans_snapshot, format="conll")
    _checked(response, data, "text/plain", "conll", spans_snapshot)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.conll").write_bytes(data)
    docs = conll_documents(tmp_path / "c" / "x.conll")
    assert docs[0][2][0] == ("EU", "B-ORG")

    response, data = get(owner_client, spans_snapshot, format="card")
    _checked(response, data, "text/markdown", "md", spans_snapshot)
    header = yaml.safe_load(data.decode().split("---\n")[1])
    assert header["task_categories"] == ["token-classification"]

    response, data = get(owner_client, spans_snapshot, format="labelstudio")
    _checked(response, data, "application/json", "json", spans_snapshot)
    tasks = json.loads(data)
    assert len(tasks) == spans_snapshot.rows


def test_ranges(owner_client, classification_snapshot):
    full = canonical_path(classification_snapshot).read_bytes()
    size = len(full)
    etag = f'"{classification_snapshot.sha256}"'

    response, data = get(owner_client, classification_snapshot, {"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert data == full[:10]
    assert response["Content-Range"] == f"bytes 0-9/{size}"
    assert response["Content-Length"] == "10"
    assert response["ETag"] == etag

    response, data = get(owner_client, classification_snapshot, {"Range": "bytes=-7"})
    assert (response.status_code, data, response["Content-Range"]) == (
        206,
        full[-7:],
        f"bytes {size - 7}-{size - 1}/{size}",
    )

    response, data = get(owner_client, classification_snapshot, {"Range": "bytes=10-"})
    assert (response.status_code, data) == (206, full[10:])

    response, data = get(owner_client, classification_snapshot, {"Range": f"bytes=5-{size + 100}"})
    assert (response.status_code, data) == (206, full[5:])

    response, data = get(owner_client, classification_snapshot, {"Range": f"bytes={size}-"})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"
    assert json.loads(data)["errors"][0]["field"] == "Range"

    response, data = get(owner_client, classification_snapshot, {"Range": "bytes=0-1,5-6"})
    assert (response.status_code, data) == (200, full)  # several ranges: the whole file

    response, data = get(owner_client, classification_snapshot, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (response.status_code, data) == (200, full)  # the file changed since: the whole of it
    response, data = get(owner_client, classification_snapshot, {"Range": "bytes=0-9", "If-Range": etag})
    assert (response.status_code, data) == (206, full[:10])


def test_if_none_match(owner_client, classification_snapshot):
    response, data = get(owner_client, classification_snapshot, format="parquet")
    etag = response["ETag"]
    assert etag == f'"{hashlib.sha256(data).hexdigest()}"'
    response, data = get(owner_client, classification_snapshot, {"If-None-Match": f'"other", {etag}'}, format="parquet")
    assert (response.status_code, data, response["ETag"]) == (304, b"", etag)
    response, data = get(owner_client, classification_snapshot, {"If-None-Match": '"other"'}, format="parquet")
    assert response.status_code == 200


def test_bundle(owner_client, classification_snapshot):
    response, data = get(owner_client, classification_snapshot, format="csv", bundle=1)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-tar"
    assert response["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    slug = download_slug(classification_snapshot)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == [slug, f"{slug}/README.md", f"{slug}/{slug}.csv"]
        csv_bytes = tar.extractfile(f"{slug}/{slug}.csv").read()
        card = tar.extractfile(f"{slug}/README.md").read()
    assert csv_bytes == get(owner_client, classification_snapshot, format="csv")[1]
    assert card == get(owner_client, classification_snapshot, format="card")[1]
    again, data2 = get(owner_client, classification_snapshot, format="csv", bundle=1)
    assert (again["ETag"], data2) == (response["ETag"], data)  # built once, served as is


def test_bad_formats(owner_client, classification_snapshot):
    response, data = get(owner_client, classification_snapshot, format="xlsx")
    assert response.status_code == 400
    assert json.loads(data)["errors"][0]["field"] == "format"
    response, data = get(owner_client, classification_snapshot, format="conll")
    assert response.status_code == 400
    assert json.loads(data)["errors"][0]["field"] == "format"


def test_conll_with_overlapping_spans_is_400(owner, owner_client):
    project = project_of(owner, "spans")
    spans = [{"start": 0, "end": 8, "label": "LOC"}, {"start": 4, "end": 13, "label": "ORG"}]
    rows = canonical_rows("spans", meta=False, specs=[("x-1", "New York City", spans, "consensus", "train")])
    snapshot = snapshot_make(project, rows, meta=[])
    response, data = get(owner_client, snapshot, format="conll")
    assert response.status_code == 400
    assert "x-1" in json.loads(data)["errors"][0]["message"]


def test_building_and_failed_are_409(owner, owner_client):
    project = project_of(owner, "classification")
    building = snapshot_make(project, canonical_rows("classification"), status=SnapshotStatus.BUILDING)
    response, data = get(owner_client, building)
    assert response.status_code == 409
    assert json.loads(data)["status"] == "building"
    failed = snapshot_make(project, [], status=SnapshotStatus.FAILED, error="Building the snapshot failed: disk full")
    response, data = get(owner_client, failed, format="csv")
    assert response.status_code == 409
    assert "disk full" in json.loads(data)["detail"]
    assert not (canonical_path(failed).parent / "data.csv").exists()


@pytest.mark.parametrize(
    ("role", "expected"), [("annotator", 403), ("reviewer", 403), ("engineer", 200), ("manager", 200)]
)
def test_roles(member_client, classification_snapshot, role, expected):
    response, _ = get(member_client(classification_snapshot.project, role), classification_snapshot)
    assert response.status_code == expected


def test_outsiders_and_unknown_snapshots_are_404(classification_snapshot):
    outsider = client_for(make_user())
    assert get(outsider, classification_snapshot)[0].status_code == 404
    assert outsider.get("/api/snapshots/999999999/download").status_code == 404
    assert get(client_for(make_user(staff=True)), classification_snapshot)[0].status_code == 200


def test_empty_snapshot_downloads(owner_client, empty_snapshot):
    response, data = get(owner_client, empty_snapshot)
    assert (response.status_code, data, response["Content-Length"]) == (200, b"", "0")
    assert get(owner_client, empty_snapshot, {"Range": "bytes=0-"})[0].status_code == 416
    response, data = get(owner_client, empty_snapshot, format="csv")
    assert data.decode().startswith("external_id,text,")


def test_byte_range_rules():
    from annotation.apis.snapshot_download import Unsatisfiable, byte_range

    assert byte_range("bytes=0-0", 10) == (0, 0)
    assert byte_range("bytes=-20", 10) == (0, 9)  # a suffix longer than the file: all of it
    assert byte_range("bytes=5-3", 10) is None  # invalid: the whole file
    assert byte_range("items=0-1", 10) is None
    assert byte_range("bytes=-", 10) is None
    with pytest.raises(Unsatisfiable):
        byte_range("bytes=-0", 10)
    with pytest.raises(Unsatisfiable):
        byte_range("bytes=10-12", 10)


def test_a_format_being_written_elsewhere_answers_503_with_retry_after(owner_client, classification_snapshot):
    # the first download of a format writes it in its request; another request meanwhile does not wait on the lock
    import fcntl

    from annotation.datasets.formats import FILES
    from annotation.datasets.paths import snapshot_dir

    folder = snapshot_dir(classification_snapshot)
    with (folder / f"{FILES['parquet']}.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        response, data = get(owner_client, classification_snapshot, format="parquet")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert json.loads(data)["errors"][0]["field"] == "format"
    response, _ = get(owner_client, classification_snapshot, format="parquet")  # the lock is free again
    assert response.status_code == 200
