"""Items rejected before the review loop re-queued them (filled by the review work)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("annotation", "0008_quality")]

    operations: list = []
