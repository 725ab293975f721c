import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.annotation.apis.helpers import assert_error, error_fields
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------ auth


def test_token_good_credentials_returns_a_working_token():
    user = make_user("alice", password="correct-horse-1")
    r = APIClient().post("/api/auth/token/", {"username": "alice", "password": "correct-horse-1"}, format="json")
    assert r.status_code == 200, r.content
    token = r.json()["token"]
    assert token == Token.objects.get(user=user).key

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    r = client.get("/api/projects/")
    assert r.status_code == 200, r.content
    assert r.json()["count"] == 0


def test_token_endpoint_without_trailing_slash():
    make_user("alice", password="correct-horse-1")
    r = APIClient().post("/api/auth/token", {"username": "alice", "password": "correct-horse-1"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["token"]


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "alice", "password": "wrong-password"},
        {"username": "nobody", "password": "correct-horse-1"},
        {"username": "alice"},
        {},
    ],
)
def test_token_bad_credentials_is_400_json(payload):
    make_user("alice", password="correct-horse-1")
    r = APIClient().post("/api/auth/token/", payload, format="json")
    body = assert_error(r, 400)
    assert "token" not in body
    assert body["errors"]


def test_token_for_inactive_user_is_refused():
    user = make_user("alice", password="correct-horse-1")
    user.is_active = False
    user.save()
    r = APIClient().post("/api/auth/token/", {"username": "alice", "password": "correct-horse-1"}, format="json")
    assert_error(r, 400)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/projects/"),
        ("post", "/api/projects/"),
        ("get", "/api/users/"),
        ("get", "/api/projects/1/next"),
        ("get", "/api/jobs/1"),
        ("get", "/api/projects/1/export?format=jsonl"),
        ("post", "/api/projects/1/import"),
    ],
)
def test_unauthenticated_requests_get_401_or_403_json(method, path):
    r = getattr(APIClient(), method)(path)
    assert r.status_code in (401, 403), r.content
    assert_error(r, r.status_code)


def test_bad_token_is_401_json():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    r = client.get("/api/projects/")
    assert_error(r, 401)


# ------------------------------------------------------------------ users


def test_users_list_is_staff_only(staff):
    make_user("bob")
    r = client_for(staff).get("/api/users/")
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) >= {"count", "next", "previous", "results"}
    names = [u["username"] for u in body["results"]]
    assert {"root", "bob"} <= set(names)
    assert all("password" not in u for u in body["results"])

    r = client_for(make_user("carol")).get("/api/users/")
    assert_error(r, 403)


def test_staff_creates_user_who_can_then_log_in(staff):
    client = client_for(staff)
    r = client.post(
        "/api/users/", {"username": "dave", "password": "long-enough-pw", "email": "d@example.org"}, format="json"
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["username"] == "dave"
    assert body["email"] == "d@example.org"
    assert "password" not in body
    user = get_user_model().objects.get(username="dave")
    assert user.check_password("long-enough-pw")
    assert not user.is_staff
    r = APIClient().post("/api/auth/token/", {"username": "dave", "password": "long-enough-pw"}, format="json")
    assert r.status_code == 200


def test_users_endpoint_without_trailing_slash(staff):
    r = client_for(staff).post("/api/users", {"username": "erin", "password": "long-enough-pw"}, format="json")
    assert r.status_code == 201, r.content
    assert client_for(staff).get("/api/users").status_code == 200


def test_non_staff_cannot_create_user():
    r = client_for(make_user("carol")).post(
        "/api/users/", {"username": "x1", "password": "long-enough-pw"}, format="json"
    )
    assert_error(r, 403)
    assert not get_user_model().objects.filter(username="x1").exists()


def test_duplicate_username_is_400_with_field(staff):
    make_user("bob")
    r = client_for(staff).post("/api/users/", {"username": "bob", "password": "long-enough-pw"}, format="json")
    body = assert_error(r, 400)
    assert "username" in error_fields(body)
    assert get_user_model().objects.filter(username="bob").count() == 1


def test_short_password_is_400_with_field(staff):
    r = client_for(staff).post("/api/users/", {"username": "frank", "password": "short"}, format="json")
    body = assert_error(r, 400)
    assert "password" in error_fields(body)
    assert not get_user_model().objects.filter(username="frank").exists()


def test_user_create_reports_every_bad_field(staff):
    r = client_for(staff).post(
        "/api/users/", {"username": "bad name!", "password": "x", "email": "nope"}, format="json"
    )
    body = assert_error(r, 400)
    assert {"username", "password", "email"} <= set(error_fields(body))


def test_unknown_fields_are_refused_not_ignored(staff, project, manager_client):
    """One unknown-field guard (serializers.StrictInput) for the users, members and schedule inputs: a typo is
    a 400 naming the field, and nothing is written."""
    body = assert_error(
        client_for(staff).post("/api/users/", {"username": "typo", "password": "pw-long-enough-1", "is_stafff": True}),
        400,
    )
    assert "is_stafff" in error_fields(body)
    assert not get_user_model().objects.filter(username="typo").exists()
    body = assert_error(
        manager_client.post(
            f"/api/projects/{project.pk}/members/", {"username": "root", "role": "reviewer", "rol": "x"}, format="json"
        ),
        400,
    )
    assert "rol" in error_fields(body)
    body = assert_error(
        manager_client.put(
            f"/api/projects/{project.pk}/training-schedule", {"every_minutes": 60, "evry": 1}, format="json"
        ),
        400,
    )
    assert "evry" in error_fields(body)


def test_staff_see_their_role_as_staff_in_the_project_list(staff, project):
    """The project list's role is the one annotation.access decides with: staff hold every capability."""
    rows = client_for(staff).get("/api/projects/").json()["results"]
    assert [r["role"] for r in rows if r["id"] == project.pk] == ["staff"]
