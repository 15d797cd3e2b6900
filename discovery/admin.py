"""Admin for DFT jobs: the state machine at a glance, and a retry action for failed jobs."""

from __future__ import annotations

from django.contrib import admin, messages

from discovery.models import DFTJob
from discovery.services import dft


@admin.register(DFTJob)
class DFTJobAdmin(admin.ModelAdmin):
    list_display = ("id", "state", "backend", "preset", "formula", "attempts", "wall_time_s", "worker_host",
                    "error_class", "created_at")
    list_filter = ("state", "backend", "preset", "error_class")
    search_fields = ("id", "worker_host", "error_message")
    readonly_fields = ("candidate", "material", "scheme", "energy_record", "state", "attempts", "worker_host",
                       "started_at", "finished_at", "wall_time_s", "settings", "result", "log_excerpt", "error_class",
                       "error_message", "input_structure", "created_at")
    actions = ["retry_failed", "cancel"]

    @admin.display(description="formula")
    def formula(self, job: DFTJob) -> str:
        return job.settings.get("label", "")

    @admin.action(description="Retry the selected failed or cancelled jobs")
    def retry_failed(self, request, queryset):
        n = dft.retry_failed_jobs(queryset.values_list("pk", flat=True))
        self.message_user(request, f"re-queued {n} DFT jobs", messages.SUCCESS)

    @admin.action(description="Cancel the selected queued or running jobs")
    def cancel(self, request, queryset):
        n = 0
        for job in queryset.exclude(state__in=dft.TERMINAL_STATES):
            dft.cancel_job(job.pk, reason=f"cancelled by {request.user}")
            n += 1
        self.message_user(request, f"cancelled {n} DFT jobs", messages.SUCCESS)
