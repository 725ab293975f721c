"""Leave room on each page of annotation_item so that the lease and counter updates of the labeling
loop can be heap-only (HOT) updates that touch no index (PostgreSQL only)."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE annotation_item SET (fillfactor = 80)", params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE annotation_item RESET (fillfactor)", params=None)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0002_overlap_trigger")]
    operations = [migrations.RunPython(forwards, backwards)]
