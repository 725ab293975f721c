from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from annotation.datasets.paths import snapshot_files_remove
        from annotation.models import Snapshot

        # a snapshot's files go with its row (deleted with its project too: the cascade sends the signal)
        post_delete.connect(snapshot_files_remove, sender=Snapshot, dispatch_uid="snapshot_files_remove")
