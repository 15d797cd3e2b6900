"""Admin for campaigns: a validated launch form and actions that call the campaign services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from discovery.campaign_config import CampaignConfigError
from discovery.models import TERMINAL_JOB_STATES, Campaign, CampaignRound, DFTJob
from discovery.services import campaigns as services
from discovery.services import dft


class CampaignForm(forms.ModelForm):
    """Edits a campaign's settings; every value goes through ``campaign_config.validate``."""

    elements_text = forms.CharField(label="Elements", help_text="e.g. Li, Mn, O")
    pipelines_choice = forms.MultipleChoiceField(
        label="Pipelines",
        choices=[("structural", "structural (substitutions)"), ("compositional", "compositional (AIRSS)")],
        widget=forms.CheckboxSelectMultiple,
    )
    rounds = forms.IntegerField(initial=3)
    candidates_per_round = forms.IntegerField(initial=200)
    dft_per_round = forms.IntegerField(initial=4)
    wall_clock_hours = forms.FloatField(initial=24)
    ensemble_size = forms.IntegerField(initial=3)
    kappa = forms.FloatField(initial=1.0, help_text="acquisition: mean − κ·std")
    kappa_final = forms.FloatField(
        required=False, help_text="κ of the last round (linear from κ); empty: κ stays the same every round"
    )
    max_predicted_e_above_hull = forms.FloatField(initial=0.1, help_text="eV/atom")
    retraining = forms.ChoiceField(
        choices=[("fine-tune", "fine-tune the previous round's ensemble"), ("scratch", "train a new ensemble")],
        initial="fine-tune", required=False, help_text="how the screening ensemble learns each round's DFT results",
    )
    cap_per_chemsys = forms.IntegerField(initial=2)
    max_concurrent_dft = forms.IntegerField(
        initial=0, required=False, help_text="DFT jobs of this campaign at once; 0 or empty: no limit"
    )
    dft_backend = forms.ChoiceField(choices=[("gpaw", "GPAW"), ("vasp", "VASP (SLURM)"), ("ml", "ML (CHGNet)")])
    dft_preset = forms.ChoiceField(choices=[("fast", "fast"), ("standard", "standard")])

    class Meta:
        model = Campaign
        fields = ["name", "max_elements"]

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
        raw = {
            key: data.get(key)
            for key in (
                "name", "max_elements", "rounds", "candidates_per_round", "dft_per_round", "wall_clock_hours",
                "ensemble_size", "kappa", "kappa_final", "max_predicted_e_above_hull", "retraining", "cap_per_chemsys",
                "max_concurrent_dft", "dft_backend", "dft_preset",
            )
            if data.get(key) not in (None, "")  # an optional field left empty: the setting's default
        }
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
        for job in queryset.exclude(state__in=TERMINAL_JOB_STATES):
            dft.cancel_job(job.pk, reason=f"cancelled by {request.user}")
            n += 1
        self.message_user(request, f"cancelled {n} DFT jobs", messages.SUCCESS)
