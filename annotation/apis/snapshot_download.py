"""A snapshot's files (helper "formats" fills this in)."""

from rest_framework.views import APIView


class SnapshotDownloadApi(APIView):
    pass
