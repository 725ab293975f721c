"""Dataset snapshots: create, list, read (helper "build" fills this in)."""

from rest_framework.views import APIView


class ProjectSnapshotsApi(APIView):
    pass


class SnapshotDetailApi(APIView):
    pass
