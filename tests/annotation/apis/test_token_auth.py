"""`next` and submit with `Authorization: Token <key>`: DRF's authentication pipeline runs
annotation.auth.TokenAuthentication (DRF's contract: `(user, Token)`, the lookup one prepared statement), then
the views' own access check and statement. Every answer must equal the one the other API tests get with
force_authenticate, and the number of statements per request is pinned here:

- next: token auth, project access, the queue statement (3); a `SELECT min/max` first for random sampling;
  the waiting retry of the queue statement only when SKIP LOCKED found nothing.
- submit: token auth, `BEGIN; EXECUTE lock`, `EXECUTE write; COMMIT` (3 round trips)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework import exceptions
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from annotation.auth import TokenAuthentication
from annotation.models import Annotation, Assignment
from tests.annotation.apis.helpers import assert_error, make_items
from tests.conftest import add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def with_header(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def token_client(user) -> APIClient:
    return with_header(f"Token {Token.objects.create(user=user).key}")


def executed(ctx) -> list[str]:
    """The statements a request sent, each up to its parameters; PREPAREs (sent once per connection, before a
    statement's first EXECUTE) left out."""
    return [q["sql"].split("(")[0] for q in ctx.captured_queries if not q["sql"].startswith("PREPARE ")]


# ---------------------------------------------------------------- DRF's contract: (user, Token)


def test_authenticate_returns_the_user_and_the_token_instance():
    user = make_user()
    token = Token.objects.create(user=user)
    request = RequestFactory().get("/api/projects/1/next", HTTP_AUTHORIZATION=f"Token {token.key}")
    got_user, auth = TokenAuthentication().authenticate(request)
    assert isinstance(auth, Token)
    assert auth.key == token.key
    assert auth.user_id == user.pk
    assert auth.user == user
    assert got_user == user
    assert got_user.is_active
    assert TokenAuthentication().authenticate_header(request) == "Token"
    # no header: not this authenticator's request (DRF tries the next one)
    assert TokenAuthentication().authenticate(RequestFactory().get("/")) is None
    bad = RequestFactory().get("/", HTTP_AUTHORIZATION="Token not-a-key")
    with pytest.raises(exceptions.AuthenticationFailed, match=r"^Invalid token\.$"):
        TokenAuthentication().authenticate(bad)


class _WhoAmI(APIView):
    """A view DRF authenticates with the project's default authentication classes."""

    seen: list = []

    def get(self, request):
        self.seen.append((request.user, request.auth))
        return Response({"user": request.user.get_username()})


def test_request_auth_is_the_token_in_a_view():
    user = make_user()
    token = Token.objects.create(user=user)
    _WhoAmI.seen = []
    request = APIRequestFactory().get("/who", HTTP_AUTHORIZATION=f"Token {token.key}")
    r = _WhoAmI.as_view()(request)
    assert r.status_code == 200
    [(seen_user, auth)] = _WhoAmI.seen
    assert seen_user == user
    assert isinstance(auth, Token)
    assert (auth.key, auth.user_id) == (token.key, user.pk)


# ---------------------------------------------------------------- next


@pytest.mark.django_db(transaction=True)
def test_next_with_a_token_is_three_statements(project):
    """Autocommit, as in production: auth, access, then the queue statement, which is its own transaction
    and so is sent with `SET LOCAL synchronous_commit = off` (a lease's commit need not wait for the WAL)."""
    first, second = make_items(project, 2)
    user = make_user()
    add_member(project, user)
    client = token_client(user)
    assert client.get(f"/api/projects/{project.pk}/next").status_code == 200  # prepares the statements
    for query, expected in (("", first), (f"?exclude={first.pk}", second)):
        with CaptureQueriesContext(connection) as ctx:
            r = client.get(f"/api/projects/{project.pk}/next{query}")
        assert r.status_code == 200
        assert r.json()["id"] == expected.pk
        assert executed(ctx) == [
            "EXECUTE tandem_auth",
            "EXECUTE tandem_project_access",
            "SET LOCAL synchronous_commit = off; EXECUTE tandem_next_prio_skip",
        ], ctx.captured_queries
        assert len(ctx.captured_queries) == 3  # nothing left to prepare on this connection
    assert set(Assignment.objects.values_list("item_id", "user_id")) == {(first.pk, user.pk), (second.pk, user.pk)}


def test_next_with_a_token_counts_with_django_assert_num_queries(project, django_assert_num_queries):
    """The same count through pytest-django's fixture (inside the test's transaction: no SET LOCAL prefix)."""
    make_items(project, 2)
    user = make_user()
    add_member(project, user)
    client = token_client(user)
    assert client.get(f"/api/projects/{project.pk}/next").status_code == 200  # prepares the statements
    with django_assert_num_queries(3):
        assert client.get(f"/api/projects/{project.pk}/next").status_code == 200  # the live lease
    with django_assert_num_queries(3):
        assert client.get(f"/api/projects/{project.pk}/next?exclude=1").status_code == 200


def test_next_with_a_token_and_random_sampling_reads_the_id_range_first(project):
    project.sampling = "random"
    project.save()
    make_items(project, 3)
    user = make_user()
    add_member(project, user)
    client = token_client(user)
    held = client.get(f"/api/projects/{project.pk}/next").json()["id"]  # prepares the statements
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(f"/api/projects/{project.pk}/next?exclude={held}")
    assert r.status_code == 200
    assert r.json()["id"] != held
    sqls = executed(ctx)
    assert sqls[:2] == ["EXECUTE tandem_auth", "EXECUTE tandem_project_access"], sqls
    assert sqls[2] == "SELECT min", sqls
    assert ctx.captured_queries[2]["sql"].startswith("SELECT min(id), max(id) FROM annotation_item"), sqls
    # from a random id upwards; from the lowest id only when nothing lies above the random start
    assert sqls[3:] in (
        ["EXECUTE tandem_next_rand_from_skip"],
        ["EXECUTE tandem_next_rand_from_skip", "EXECUTE tandem_next_rand_skip"],
    ), sqls


def test_next_with_a_token_when_nothing_is_left(project):
    """SKIP LOCKED found nothing: the waiting statement is tried once, then 204."""
    user = make_user()
    add_member(project, user)
    client = token_client(user)
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(f"/api/projects/{project.pk}/next")
    assert r.status_code == 204
    assert executed(ctx) == [
        "EXECUTE tandem_auth",
        "EXECUTE tandem_project_access",
        "EXECUTE tandem_next_prio_skip",
        "EXECUTE tandem_next_prio_wait",
    ], ctx.captured_queries


def test_refused_requests_lease_nothing(project):
    """A request that authentication, access, the `exclude` check or DRF's negotiation refuses takes no lease
    (a stranger, a bad `exclude`, an Accept DRF answers 406); `?format=json` (read by DRF's negotiation) is
    served."""
    [item] = make_items(project, 1)
    user, stranger = make_user(), make_user()
    add_member(project, user)
    url = f"/api/projects/{project.pk}/next"
    outsider = token_client(stranger)
    assert assert_error(outsider.get(url), 404)["detail"] == "No such project."
    assert assert_error(outsider.get(f"{url}?exclude=x"), 404)["detail"] == "No such project."
    client = token_client(user)
    assert assert_error(client.get(f"{url}?exclude=x"), 400)["errors"][0]["field"] == "exclude"
    assert client.get(url, HTTP_ACCEPT="text/csv").status_code == 406
    assert not Assignment.objects.exists()
    # a parameter DRF's negotiation reads is served
    r = client.get(f"{url}?format=json")
    assert r.status_code == 200
    assert r.json()["id"] == item.pk


def test_roles_and_missing_projects(project):
    make_items(project, 2)
    member = make_user()
    add_member(project, member, "reviewer")
    stranger = make_user()
    staff = make_user(staff=True)
    assert token_client(member).get(f"/api/projects/{project.pk}/next").status_code == 200
    assert token_client(staff).get(f"/api/projects/{project.pk}/next").status_code == 200  # staff: any project
    body = assert_error(token_client(stranger).get(f"/api/projects/{project.pk}/next"), 404)
    assert body["detail"] == "No such project."
    general = APIClient()  # the general path (force_authenticate, no token header) answers the same
    general.force_authenticate(member)
    assert assert_error(general.get(f"/api/projects/{10**18 - 1}/next"), 404)["detail"] == "No such project."
    for user in (member, staff):
        for missing in (project.pk + 1000, 10**18 - 1):
            body = assert_error(with_header(f"Token {user.auth_token.key}").get(f"/api/projects/{missing}/next"), 404)
            assert body["detail"] == "No such project."
        for beyond in (2**63 - 1, 2**63, 10**30):  # ids have at most 18 digits (annotation/urls.py)
            body = assert_error(with_header(f"Token {user.auth_token.key}").get(f"/api/projects/{beyond}/next"), 404)
            assert body["detail"].startswith("No API endpoint")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Token",
        "Token ",
        "Token nope-not-a-key",
        "Token 0123456789abcdef0123456789abcdef01234567",
        "Token a b",
        "token UNKNOWN",
        "Bearer abc",
    ],
)
def test_bad_credentials_answer_as_drf_does(project, header):
    make_items(project, 1)
    r = with_header(header).get(f"/api/projects/{project.pk}/next")
    assert r.status_code in (401, 403)
    body = assert_error(r, r.status_code)
    assert not Assignment.objects.exists()
    if header is not None and header.split(" ")[0].lower() == "token":
        assert r.status_code == 401
        assert r["WWW-Authenticate"] == "Token"
        assert body["detail"] in (
            "Invalid token.",
            "Invalid token header. No credentials provided.",
            "Invalid token header. Token string should not contain spaces.",
        )


def test_inactive_user_is_refused(project):
    make_items(project, 1)
    user = make_user()
    add_member(project, user)
    client = token_client(user)
    user.is_active = False
    user.save()
    body = assert_error(client.get(f"/api/projects/{project.pk}/next"), 401)
    assert body["detail"] == "User inactive or deleted."
    assert not Assignment.objects.exists()


def test_the_token_user_is_the_one_leasing(project):
    """Two users with tokens on one connection: each request acts as its own token's user."""
    a_item, b_item = make_items(project, 2)
    a, b = make_user(), make_user()
    add_member(project, a)
    add_member(project, b)
    ca, cb = token_client(a), token_client(b)
    assert ca.get(f"/api/projects/{project.pk}/next").json()["id"] == a_item.pk
    assert cb.get(f"/api/projects/{project.pk}/next").json()["id"] == b_item.pk
    assert ca.get(f"/api/projects/{project.pk}/next").json()["id"] == a_item.pk
    assert set(Assignment.objects.values_list("item_id", "user_id")) == {(a_item.pk, a.pk), (b_item.pk, b.pk)}


def session_member(project):
    """A member of the project logged in with a session cookie (as the browser), CSRF checks on; and one item."""
    [item] = make_items(project, 1)
    user = make_user(password="pw-secret-123")
    add_member(project, user)
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=user.username, password="pw-secret-123")
    return client, item


def test_session_login_still_works(project):
    """The browser: session cookie, no token header (DRF's SessionAuthentication)."""
    client, item = session_member(project)
    r = client.get(f"/api/projects/{project.pk}/next")
    assert r.status_code == 200
    assert r.json()["id"] == item.pk


def test_other_project_fields_come_through(project):
    """The project loaded by the access check (annotation.access.project_access) drives next (k, sampling)."""
    other = make_project(name="seq", sampling="sequential", annotations_per_item=2)
    first, _ = make_items(other, 2)
    u1, u2 = make_user(), make_user()
    add_member(other, u1)
    add_member(other, u2)
    assert token_client(u1).get(f"/api/projects/{other.pk}/next").json()["id"] == first.pk
    # k=2: the second expert shares the first item
    assert token_client(u2).get(f"/api/projects/{other.pk}/next").json()["id"] == first.pk


# ---------------------------------------------------------------- submit


def post(client, item_id, body, key="k-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/api/items/{item_id}/annotations", body, format="json", **headers)


@pytest.mark.django_db(transaction=True)
def test_submit_with_a_token_is_three_round_trips(project):
    """Autocommit, as in production: the token lookup, then the transaction begins in the lock's round trip and
    commits in the write's."""
    first, second = make_items(project, 2)
    user = make_user()
    add_member(project, user)
    client = token_client(user)
    assert post(client, first.pk, {"value": {"label": "sports"}}, key="warm").status_code == 201
    with CaptureQueriesContext(connection) as ctx:
        r = post(client, second.pk, {"value": {"label": "tech"}, "lead_time_ms": 5})
    assert r.status_code == 201, r.content
    sqls = [q["sql"] for q in ctx.captured_queries]
    assert [s.split("(")[0] for s in sqls] == [
        "EXECUTE tandem_auth",
        "BEGIN; EXECUTE tandem_submit_lock",
        "EXECUTE tandem_submit_write",
    ], sqls
    assert sqls[2].endswith("; COMMIT"), sqls
    body = r.json()
    assert body["annotator"] == user.username
    assert (body["item"], body["value"], body["lead_time_ms"]) == (second.pk, {"label": "tech"}, 5)
    ann = Annotation.objects.get(pk=body["id"])
    assert (ann.annotator_id, ann.idempotency_key) == (user.pk, "k-1")
    # the repeat answers the first annotation
    again = post(client, second.pk, {"value": {"label": "tech"}})
    assert again.status_code == 200
    assert again.json() == body


@pytest.mark.parametrize(
    "header",
    ["Token 0123456789abcdef0123456789abcdef01234567", "Token nope-not-a-key", "Token a b", "Token", "token x"],
)
@pytest.mark.parametrize("body", [{"value": {"label": "sports"}}, {"value": None}, {"lead_time_ms": -1}])
def test_submit_bad_token_is_401_whatever_the_body(project, header, body):
    [item] = make_items(project, 1)
    r = post(with_header(header), item.pk, body)
    body = assert_error(r, 401)
    assert r["WWW-Authenticate"] == "Token"
    assert not Annotation.objects.exists()


def test_submit_bad_token_with_a_bad_idempotency_key_is_401(project):
    [item] = make_items(project, 1)
    r = post(with_header("Token unknownkey"), item.pk, {"value": {"label": "sports"}}, key="x" * 300)
    assert_error(r, 401)


def test_submit_inactive_user_is_401(project):
    [item] = make_items(project, 1)
    user = make_user()
    add_member(project, user)
    client = token_client(user)
    user.is_active = False
    user.save()
    body = assert_error(post(client, item.pk, {"value": {"label": "sports"}}), 401)
    assert body["detail"] == "User inactive or deleted."
    assert not Annotation.objects.exists()


def test_submit_access_and_validation_with_a_token(project):
    [item] = make_items(project, 1)
    member, stranger, staff = make_user(), make_user(), make_user(staff=True)
    add_member(project, member)
    body = assert_error(post(token_client(stranger), item.pk, {"value": {"label": "sports"}}), 404)
    assert body["detail"] == "No such item."
    body = assert_error(post(token_client(member), 10**9, {"value": {"label": "sports"}}), 404)
    assert body["detail"] == "No such item."
    body = assert_error(post(with_header(f"Token {member.auth_token.key}"), item.pk, {"value": {"label": "x"}}), 400)
    assert "value.label" in [e["field"] for e in body["errors"]]
    assert_error(post(with_header(f"Token {member.auth_token.key}"), item.pk, {"value": None}), 400)
    assert not Annotation.objects.exists()
    # staff may annotate in any project
    r = post(token_client(staff), item.pk, {"value": {"label": "sports"}})
    assert r.status_code == 201
    assert r.json()["annotator"] == staff.username
    # the item is full now (k=1): 409 for the member
    assert_error(
        post(with_header(f"Token {member.auth_token.key}"), item.pk, {"value": {"label": "tech"}}, key="k2"), 409
    )


def test_submit_with_session_still_needs_csrf(project):
    client, item = session_member(project)
    assert_error(post(client, item.pk, {"value": {"label": "sports"}}), 403)
    assert not Annotation.objects.exists()
