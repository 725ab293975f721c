"""The model's current suggestion on the item row, and the project's uncertainty measure."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("annotation", "0003_item_fillfactor")]

    operations = [
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
    ]
