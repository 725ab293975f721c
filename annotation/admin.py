from django.contrib import admin

from annotation.models import Annotation, Assignment, FinalLabel, Item, Job, Membership, Project, Review


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never edited here: items, annotations, leases, final labels and Jobs change only through the
    services, which keep the counters the queue depends on (annotation_count, lease_count, lease_expires_at)
    equal to the rows and move Jobs through their lifecycle. (So the admin cannot delete a project that has
    items either: DELETE /api/projects/{id} does.)"""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    # changed through the settings page or PATCH /api/projects/{id}, whose service re-queues or decides items
    readonly_fields = ["task_type", "labels", "annotations_per_item", "review_policy", "review_sample_rate"]
    list_display = ["id", "name", "task_type", "annotations_per_item", "review_policy", "sampling", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Item)
class ItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "external_id", "status", "priority", "annotation_count", "lease_count"]
    list_filter = ["status", "is_gold"]
    search_fields = ["external_id"]
    raw_id_fields = ["project"]
    list_select_related = ["project"]
    show_full_result_count = False


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyAdmin):
    list_display = ["id", "item", "annotator", "created_at"]
    raw_id_fields = ["item", "annotator"]
    show_full_result_count = False


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "item", "user", "expires_at"]
    raw_id_fields = ["item", "user", "project"]


@admin.register(FinalLabel)
class FinalLabelAdmin(ReadOnlyAdmin):
    list_display = ["id", "item", "source", "updated_at"]
    raw_id_fields = ["item"]


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["id", "annotation", "reviewer", "verdict", "created_at"]
    raw_id_fields = ["annotation", "reviewer"]


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "project", "status", "progress", "total", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    raw_id_fields = ["project", "created_by"]
