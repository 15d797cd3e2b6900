"""Discovery data: campaigns and their rounds, candidates, model versions and DFT jobs (GNoME's loop as rows)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from catalog.models import EnergyRecord, Material, Scheme


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        QUEUED = "queued"
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    name = models.CharField(max_length=120, unique=True)
    elements = ArrayField(models.CharField(max_length=3), help_text="allowed elements")
    max_elements = models.PositiveSmallIntegerField(default=3, help_text="most elements in one compound")
    pipelines = ArrayField(models.CharField(max_length=16), default=list, help_text="structural, compositional")
    config = models.JSONField(default=dict, blank=True, help_text="budget, screening and DFT settings")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    launched_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """A trained screening ensemble: what it was trained on, how well it did, where its weights are."""

    name = models.CharField(max_length=120)
    scheme = models.ForeignKey(Scheme, on_delete=models.PROTECT, related_name="model_versions")
    target = models.CharField(max_length=40, help_text="formation_energy_per_atom or stability_value")
    architecture = models.CharField(max_length=40, default="M3GNet")
    ensemble_size = models.PositiveSmallIntegerField(default=1)
    hyperparameters = models.JSONField(default=dict, blank=True)
    data_count = models.PositiveIntegerField(default=0)
    data_hash = models.CharField(max_length=64, blank=True)
    validation_mae = models.FloatField(null=True, blank=True, help_text="eV/atom")
    test_mae = models.FloatField(null=True, blank=True, help_text="eV/atom")
    weights = models.JSONField(default=list, blank=True, help_text="[{path, sha256}] one per ensemble member")
    metrics = models.JSONField(default=dict, blank=True)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="models")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.scheme_id})"


# The stages of one round, in order ("pending" before it starts). "generating" waits for the round's generation
# chunks, "verifying" for its DFT jobs; discovery.services.campaign_stages runs each.
ROUND_STAGES = ("pending", "generate", "generating", "screen", "verify", "verifying", "fold", "retrain", "done")


class CampaignRound(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rounds")
    index = models.PositiveIntegerField()
    stage = models.CharField(max_length=24, default="pending", choices=[(s, s) for s in ROUND_STAGES])
    n_generated = models.PositiveIntegerField(default=0)
    n_deduplicated = models.PositiveIntegerField(default=0)
    n_screened = models.PositiveIntegerField(default=0)
    n_selected = models.PositiveIntegerField(default=0)
    n_dft_done = models.PositiveIntegerField(default=0)
    n_dft_failed = models.PositiveIntegerField(default=0)
    n_new_stable = models.PositiveIntegerField(default=0)
    n_new_on_hull = models.PositiveIntegerField(default=0)
    hit_rate = models.FloatField(null=True, blank=True, help_text="confirmed stable / confirmed verdicts")
    model_mae = models.FloatField(null=True, blank=True, help_text="eV/atom on this round's DFT results")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL)
    timings = models.JSONField(default=dict, blank=True, help_text="seconds per stage")
    acquisition = models.JSONField(default=dict, blank=True, help_text="the acquisition rule this round's screen used")
    generation = models.JSONField(
        default=dict, blank=True, help_text="what generation did: parents, compositions, chunks, skipped parents, dedup"
    )
    verdicts = models.JSONField(
        default=dict, blank=True,
        help_text="confirmed / provisional counts of the round's verified candidates, rediscovered vs novel, missing "
                  "competitors (hit rate and new-stable count confirmed verdicts only)",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "index"]
        constraints = [models.UniqueConstraint(fields=["campaign", "index"], name="unique_round_index")]

    def __str__(self) -> str:
        return f"{self.campaign_id} round {self.index}"


class GenerationChunk(models.Model):
    """One piece of a round's candidate generation, run as its own Celery task (queue ``default``).

    A Celery prefork child may not start processes, so a round's generation spreads over the task queue instead: any
    worker on any host takes a chunk (a slice of the parents, or a few compositions), writes its proposals here, and
    the round's ``generating`` stage deduplicates the union once every chunk is done. State lives here, not in the
    broker: a lost message or a killed worker leaves a chunk that the stage sends again.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    round = models.ForeignKey(CampaignRound, on_delete=models.CASCADE, related_name="generation_chunks")
    index = models.PositiveIntegerField()
    pipeline = models.CharField(max_length=16, help_text="structural or compositional")
    work = models.JSONField(help_text="parent material ids, or planned compositions with their seed")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    proposals = models.JSONField(default=list, blank=True, help_text="GeneratedCandidate dicts, best first")
    n_generated = models.PositiveIntegerField(default=0, help_text="proposals before keeping the best")
    skipped = models.JSONField(default=list, blank=True, help_text="[parent id, reason] of parents that failed")
    error = models.TextField(blank=True)
    worker_host = models.CharField(max_length=120, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    wall_time_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["round", "index"]
        constraints = [models.UniqueConstraint(fields=["round", "index"], name="unique_generation_chunk")]

    def __str__(self) -> str:
        return f"round {self.round_id} generation chunk {self.index} ({self.pipeline}, {self.state})"


class Candidate(models.Model):
    """A generated crystal waiting for screening and, if chosen, DFT."""

    class Status(models.TextChoices):
        GENERATED = "generated"
        SCREENED = "screened"
        SELECTED = "selected"
        VERIFIED = "verified"
        FAILED = "failed"
        REJECTED = "rejected"

    round = models.ForeignKey(CampaignRound, null=True, blank=True, on_delete=models.CASCADE, related_name="candidates")
    structure = models.JSONField()
    formula_reduced = models.CharField(max_length=120, db_index=True)
    chemsys = models.CharField(max_length=120, db_index=True)
    pipeline = models.CharField(max_length=16, help_text="structural or compositional")
    recipe = models.JSONField(default=dict, blank=True, help_text="parent + substitution, or composition + space group")
    parent = models.ForeignKey(Material, null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    fingerprint = models.CharField(max_length=64, db_index=True)
    predicted_mean = models.FloatField(null=True, blank=True, help_text="eV/atom")
    predicted_std = models.FloatField(null=True, blank=True, help_text="eV/atom")
    predicted_e_above_hull = models.FloatField(null=True, blank=True, help_text="eV/atom")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.GENERATED, db_index=True)
    material = models.ForeignKey(Material, null=True, blank=True, on_delete=models.SET_NULL, related_name="candidates")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["round", "fingerprint"], name="unique_candidate_per_round")]

    def __str__(self) -> str:
        return f"candidate {self.pk} {self.formula_reduced}"


class DFTJob(models.Model):
    """One DFT calculation with an explicit state machine: queued → running → succeeded | failed | cancelled."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    candidate = models.ForeignKey(Candidate, null=True, blank=True, on_delete=models.CASCADE, related_name="dft_jobs")
    material = models.ForeignKey(Material, null=True, blank=True, on_delete=models.SET_NULL, related_name="dft_jobs")
    # Why the job exists besides its candidate (provenance as columns, queried as such):
    is_reference = models.BooleanField(default=False, help_text="an elemental reference of its scheme")
    reference_for = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="queued_phases",
        help_text="the job whose verdict needed this one (a competing phase or a searched structure)",
    )
    competitor_for = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="competitor_jobs",
        help_text="the campaign whose competitor budget (max_competitor_jobs) this job counts in",
    )
    searched_for = models.CharField(
        max_length=64, blank=True, db_index=True,
        help_text="reduced formula whose structure this job tries (a prototype decorated for a composition-only phase)",
    )
    held_by_campaign = models.BooleanField(
        default=False, help_text="created but not sent: the campaign's max_concurrent_dft holds it back"
    )
    input_structure = models.JSONField()
    backend = models.CharField(max_length=16, default="gpaw")
    preset = models.CharField(max_length=16, default="fast")
    scheme = models.ForeignKey(Scheme, null=True, blank=True, on_delete=models.PROTECT, related_name="dft_jobs")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker_host = models.CharField(max_length=120, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    wall_time_s = models.FloatField(null=True, blank=True)
    settings = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="energies, relaxed structure, SCF info")
    energy_record = models.ForeignKey(EnergyRecord, null=True, blank=True, on_delete=models.SET_NULL)
    log_excerpt = models.TextField(blank=True)
    error_class = models.CharField(max_length=120, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one live (queued, running or succeeded) job per candidate and level of theory: a re-run stage or
            # a duplicate message finds the existing job instead of computing the same crystal twice.
            models.UniqueConstraint(
                fields=["candidate", "backend", "preset"],
                condition=models.Q(candidate__isnull=False) & ~models.Q(state__in=["failed", "cancelled"]),
                name="one_live_dft_job_per_candidate",
            ),
            models.UniqueConstraint(  # the same for catalog materials computed in a scheme (e.g. reference phases)
                fields=["material", "backend", "preset"],
                condition=models.Q(candidate__isnull=True, material__isnull=False)
                & ~models.Q(state__in=["failed", "cancelled"]),
                name="one_live_dft_job_per_material",
            ),
        ]

    def __str__(self) -> str:
        return f"DFTJob {self.pk} {self.backend}/{self.preset} {self.state}"


# The one definition of where a DFT job's state machine ends. "Dead" jobs (failed, cancelled) are not the live job of
# their target (one_live_dft_job_per_candidate/material): a new one may be created.
DEAD_JOB_STATES = (DFTJob.State.FAILED, DFTJob.State.CANCELLED)
TERMINAL_JOB_STATES = (DFTJob.State.SUCCEEDED, *DEAD_JOB_STATES)
