from __future__ import annotations

import itertools

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation.models import Membership, Project
from annotation.services.projects import project_create

_seq = itertools.count()


@pytest.fixture(autouse=True)
def _import_dir(settings, tmp_path):
    settings.TANDEM_IMPORT_DIR = tmp_path / "imports"


def make_user(username: str | None = None, *, staff: bool = False, password: str = "pw-secret-123"):
    username = username or f"user{next(_seq)}"
    return get_user_model().objects.create_user(username=username, password=password, is_staff=staff)


def make_project(owner=None, *, labels=("sports", "politics", "tech"), **fields) -> Project:
    owner = owner or make_user()
    return project_create(created_by=owner, name=fields.pop("name", "p"), labels=list(labels), **fields)


def add_member(project: Project, user, role: str = "annotator") -> Membership:
    return Membership.objects.create(project=project, user=user, role=role)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def manager(db):
    return make_user("manager")


@pytest.fixture
def project(manager):
    return make_project(manager, name="news")


@pytest.fixture
def annotator(project):
    user = make_user("ann")
    add_member(project, user, "annotator")
    return user


@pytest.fixture
def manager_client(manager):
    return client_for(manager)


@pytest.fixture
def annotator_client(annotator):
    return client_for(annotator)


@pytest.fixture
def staff(db):
    return make_user("root", staff=True)
