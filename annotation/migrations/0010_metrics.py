"""Tables and indexes of the quality metrics, where the metrics work needs more than 0008's MetricsCache."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("annotation", "0009_requeue_rejected")]

    operations: list = []
