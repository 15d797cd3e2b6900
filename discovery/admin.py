"""Admin for campaigns: a validated launch form and actions that call the campaign services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from discovery.campaign_config import CHOICES, HELP, CampaignConfig, CampaignConfigError
from discovery.models import TERMINAL_JOB_STATES, Campaign, CampaignRound, DFTJob
from discovery.services import campaigns as services
from discovery.services import dft


def _setting_field(name: str, kind: type, default, backends: list[str]) -> forms.Field:
    """The form field of one ``CampaignConfig`` setting; values are checked by ``campaign_config.validate`` alone."""
    help_text = HELP.get(name, "")
    if kind is str:
        choices = backends if name == "dft_backend" else CHOICES[name]
        return forms.ChoiceField(choices=[(c, c) for c in choices], initial=default, required=False,
                                 help_text=help_text)
    field_class = forms.FloatField if kind is float else forms.IntegerField
    return field_class(initial=default, required=False, help_text=help_text)


class CampaignForm(forms.ModelForm):
    """Edits a campaign's settings; every value goes through ``campaign_config.validate``. The setting fields are
    built from ``CampaignConfig`` (see ``campaign_form``), so the form offers exactly what the engine accepts."""

    elements_text = forms.CharField(label="Elements", help_text="e.g. Li, Mn, O")
    pipelines_choice = forms.MultipleChoiceField(
        label="Pipelines", choices=[(p, p) for p in CHOICES["pipelines"]], widget=forms.CheckboxSelectMultiple,
        help_text="structural: substitutions of known crystals; compositional: random structures (AIRSS-like)",
    )

    class Meta:
        model = Campaign
        fields = ["name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            config = dict(self.instance.config)
            self.fields["elements_text"].initial = ", ".join(self.instance.elements)
            self.fields["pipelines_choice"].initial = self.instance.pipelines
            for name, field in self.fields.items():
                if name in config:
                    field.initial = config[name]

    def clean(self):
        data = super().clean()
        raw = {name: data.get(name) for name, _, _ in CampaignConfig.settings()
               if data.get(name) not in (None, "")}  # an optional field left empty: the setting's default
        raw["name"] = data.get("name")
        raw["elements"] = data.get("elements_text", "")
        raw["pipelines"] = list(data.get("pipelines_choice") or [])
        try:
            self.validated = services.validate_config(raw)
        except CampaignConfigError as exc:
            for key, message in exc.errors.items():
                field = {"elements": "elements_text", "pipelines": "pipelines_choice"}.get(key, key)
                self.add_error(field if field in self.fields else None, message)
        return data

    def save(self, commit=True):
        campaign = super().save(commit=False)
        config = self.validated
        campaign.elements = config.elements
        campaign.pipelines = config.pipelines
        campaign.max_elements = config.max_elements
        campaign.config = config.as_dict()
        if commit:
            campaign.save()
        return campaign


def campaign_form() -> type[CampaignForm]:
    """``CampaignForm`` with one field per ``CampaignConfig`` setting (this deployment's DFT backends offered)."""
    backends = services.deployment_backends()
    fields = {name: _setting_field(name, kind, default, backends) for name, kind, default in CampaignConfig.settings()}
    return type("CampaignSettingsForm", (CampaignForm,), fields)


class CampaignRoundInline(admin.TabularInline):
    model = CampaignRound
    extra = 0
    can_delete = False
    fields = (
        "index", "stage", "n_generated", "n_selected", "n_dft_done", "n_dft_failed", "n_new_on_hull", "hit_rate",
        "model_mae",
    )
    readonly_fields = fields


def _run(modeladmin, request, queryset, action, verb: str) -> None:
    done = 0
    for campaign in queryset:
        try:
            action(campaign, user=request.user)
            done += 1
        except (services.CampaignStateError, PermissionDenied) as exc:
            modeladmin.message_user(request, f"{campaign.name}: {exc}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"{verb} {done} campaign(s)", messages.SUCCESS)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = campaign_form()
        return super().get_form(request, obj, change=change, **kwargs)
    list_display = ("name", "status", "elements", "pipelines", "launched_by", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    readonly_fields = ("status", "launched_by", "error", "started_at", "finished_at")
    inlines = [CampaignRoundInline]
    actions = ["launch", "pause", "resume", "cancel", "retry_failed"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.launched_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Launch selected campaigns")
    def launch(self, request, queryset):
        _run(self, request, queryset, services.launch_campaign, "launched")

    @admin.action(description="Pause selected campaigns")
    def pause(self, request, queryset):
        _run(self, request, queryset, services.pause_campaign, "paused")

    @admin.action(description="Resume selected campaigns")
    def resume(self, request, queryset):
        _run(self, request, queryset, services.resume_campaign, "resumed")

    @admin.action(description="Cancel selected campaigns")
    def cancel(self, request, queryset):
        _run(self, request, queryset, services.cancel_campaign, "cancelled")

    @admin.action(description="Retry failed DFT jobs")
    def retry_failed(self, request, queryset):
        total = sum(services.retry_failed_jobs(c, user=request.user) for c in queryset)
        self.message_user(request, f"re-queued {total} failed job(s)", messages.SUCCESS)


@admin.register(DFTJob)
class DFTJobAdmin(admin.ModelAdmin):
    list_display = ("id", "state", "backend", "preset", "formula", "attempts", "wall_time_s", "worker_host",
                    "error_class", "created_at")
    list_filter = ("state", "backend", "preset", "is_reference", "error_class")
    search_fields = ("id", "worker_host", "error_message", "searched_for")
    readonly_fields = ("candidate", "material", "is_reference", "reference_for", "competitor_for", "searched_for",
                       "held_by_campaign", "scheme", "energy_record", "state", "attempts", "worker_host",
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
        for job in queryset.exclude(state__in=TERMINAL_JOB_STATES):
            dft.cancel_job(job.pk, reason=f"cancelled by {request.user}")
            n += 1
        self.message_user(request, f"cancelled {n} DFT jobs", messages.SUCCESS)
