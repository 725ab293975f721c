"""The model's current suggestion on the item row, and the project's uncertainty measure.

SQLite rebuilds a table to add a column with a default; its overlap trigger (0002) names
annotation_project, so it is dropped for the rebuild and created again afterwards."""

import importlib

from django.db import migrations, models

overlap = importlib.import_module("annotation.migrations.0002_overlap_trigger")


def sqlite_drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(overlap.SQLITE_DOWN, params=None)


def sqlite_create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(overlap.SQLITE_UP, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0003_item_fillfactor")]

    operations = [
        migrations.RunPython(sqlite_drop_trigger, sqlite_create_trigger),
        migrations.AddField(model_name="item", name="prediction", field=models.JSONField(blank=True, null=True)),
        migrations.AddField(
            model_name="project",
            name="uncertainty_measure",
            field=models.CharField(
                choices=[("least_confidence", "Least Confidence"), ("margin", "Margin"), ("entropy", "Entropy")],
                default="margin",
                max_length=20,
            ),
        ),
        migrations.RunPython(sqlite_create_trigger, sqlite_drop_trigger),
    ]
