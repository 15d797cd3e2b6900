"""Catalog data: crystals, their energies per level of theory, and the convex hulls built from them.

Invariants kept here (and by the services that write these rows):
- energies of different schemes are never mixed in one hull;
- a ``stability_value`` scheme (a dataset's own stability measure, e.g. perov_5's ``heat_ref``) never builds a hull;
- composition-only reference phases (``EnergyRecord`` without a material) take part in hulls but are not browsable.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Q

from catalog import energy_kinds

PUBLIC_ID_PREFIX = "gn-"


def format_public_id(pk: int) -> str:
    """Public ids are stable and human-friendly: ``gn-000123``."""
    return f"{PUBLIC_ID_PREFIX}{pk:06d}"


class Scheme(models.Model):
    """A level of theory. Energies are comparable only within one scheme."""

    class Kind(models.TextChoices):
        TOTAL_ENERGY = energy_kinds.TOTAL_ENERGY, "total energies (formation energies from elemental references)"
        FORMATION_ENERGY = energy_kinds.FORMATION_ENERGY, "formation energies per atom (elements at 0)"
        STABILITY_VALUE = energy_kinds.STABILITY_VALUE, "a dataset's own stability measure (no hull)"

    name = models.CharField(max_length=64, unique=True, help_text="e.g. MP2020, GPAW-PBE-fast, dataset:perov5-castelli")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    level_of_theory = models.CharField(max_length=200, blank=True, help_text="e.g. 'PBE, PAW, plane waves 520 eV'")
    is_dft = models.BooleanField(default=True, help_text="False for ML-level energies, which never enter a DFT hull")
    correction_policy = models.CharField(max_length=200, blank=True, help_text="e.g. 'none (raw PBE)', 'MP2020'")
    description = models.TextField(blank=True)
    display_priority = models.IntegerField(
        default=100, help_text="lower wins when a material has hulls in several schemes and the UI shows one"
    )
    protocol = models.JSONField(
        default=dict, blank=True, help_text="every setting behind the scheme's energies (code, cutoff, k-points, ...)"
    )
    protocol_hash = models.CharField(
        max_length=12, blank=True, help_text="catalog.protocols.protocol_hash of the protocol; empty: none recorded"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["display_priority", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def builds_hull(self) -> bool:
        return self.kind != self.Kind.STABILITY_VALUE


class Material(models.Model):
    """A crystal structure in the catalog, with the descriptors people search by."""

    public_id = models.CharField(max_length=16, unique=True, editable=False)
    structure = models.JSONField(help_text="pymatgen Structure.as_dict()")
    formula_reduced = models.CharField(max_length=120, db_index=True)
    formula_anonymous = models.CharField(max_length=120, db_index=True)
    elements = ArrayField(models.CharField(max_length=3))
    nelements = models.PositiveSmallIntegerField(db_index=True)
    chemsys = models.CharField(max_length=120, db_index=True, help_text="sorted elements joined by '-', e.g. Fe-Li-O")
    nsites = models.PositiveIntegerField()
    volume = models.FloatField(help_text="cell volume, Å³")
    density = models.FloatField(help_text="g/cm³")
    spacegroup_number = models.PositiveSmallIntegerField(null=True, db_index=True)
    spacegroup_symbol = models.CharField(max_length=32, blank=True)
    crystal_system = models.CharField(max_length=16, blank=True, db_index=True)
    symprec = models.FloatField(null=True, help_text="spglib tolerance (Å) used for the symmetry fields")
    fingerprint = models.CharField(
        max_length=64, db_index=True, help_text="cheap dedup bucket; StructureMatcher decides"
    )

    # Denormalised from the preferred scheme's HullEntry so that browsing 1M materials needs no join.
    formation_energy_per_atom = models.FloatField(null=True, db_index=True)
    e_above_hull = models.FloatField(null=True, db_index=True)
    is_stable = models.BooleanField(null=True, db_index=True)
    hull_scheme = models.ForeignKey(Scheme, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    verdict = models.CharField(
        max_length=12, blank=True, db_index=True,
        help_text="confirmed: every competing phase has an energy in hull_scheme; provisional: some are missing",
    )
    verdict_detail = models.JSONField(
        default=dict, blank=True, help_text="catalog.verdicts.Verdict.as_dict(): missing competitors, reference verdict"
    )

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            GinIndex(fields=["elements"], name="material_elements_gin"),
            # Sorted browsing at 1M rows: ties (many 0.0 e_above_hull) broken by id, both directions, NULLs last.
            models.Index(F("e_above_hull").asc(nulls_last=True), "id", name="material_ehull_asc_id"),
            models.Index(F("e_above_hull").desc(nulls_last=True), "id", name="material_ehull_desc_id"),
            models.Index(F("formation_energy_per_atom").asc(nulls_last=True), "id", name="material_eform_asc_id"),
            models.Index(F("formation_energy_per_atom").desc(nulls_last=True), "id", name="material_eform_desc_id"),
            models.Index(F("created_at").desc(), "id", name="material_created_desc_id"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.formula_reduced}"

    def to_structure(self):
        from pymatgen.core import Structure

        return Structure.from_dict(self.structure)


class MaterialOrigin(models.Model):
    """Where a material came from. Merged duplicates keep every origin."""

    class Kind(models.TextChoices):
        DATASET = "dataset"
        CAMPAIGN = "campaign"
        USER = "user"

    material = models.ForeignKey(Material, on_delete=models.CASCADE, related_name="origins")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DATASET)
    dataset = models.CharField(max_length=120, help_text="dataset or source name, e.g. perov_5, MP, campaign:3")
    source_id = models.CharField(max_length=255, help_text="id within that source (material_id, file:row)")
    licence = models.CharField(max_length=120, blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="round, parent, file names, notes")
    # Provenance of a computed crystal, as columns that queries join on: the campaign, candidate and DFT job it came
    # from. They name the discovery layer's tables as strings (catalog code never imports discovery); SET_NULL keeps
    # the crystal and its origin when a campaign is deleted.
    campaign = models.ForeignKey("discovery.Campaign", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="material_origins")
    candidate = models.ForeignKey("discovery.Candidate", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="material_origins")
    dft_job = models.ForeignKey("discovery.DFTJob", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="material_origins")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "source_id"], name="unique_origin_per_source")]
        # (kind, material) and (dataset, material) make the browser's origin filter an index-only EXISTS at 1M rows.
        indexes = [
            models.Index(fields=["dataset", "material"], name="origin_dataset_material"),
            models.Index(fields=["kind", "material"], name="origin_kind_material"),
            # the home page's latest discoveries: newest campaign origins first, read off the index
            models.Index(F("kind"), F("created_at").desc(), F("id").desc(), name="origin_kind_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset}:{self.source_id}"


class EnergyRecord(models.Model):
    """One energy at one level of theory, for a material or for a composition-only reference phase.

    Which fields are set depends on the scheme's kind: total-energy schemes carry ``energy_total``/``energy_per_atom``
    (eV, eV/atom); formation-energy schemes carry ``formation_energy_per_atom`` (eV/atom vs the elements);
    stability-value schemes carry ``stability_value`` (eV/atom, meaning given by the dataset).
    """

    scheme = models.ForeignKey(Scheme, on_delete=models.PROTECT, related_name="energies")
    material = models.ForeignKey(Material, null=True, blank=True, on_delete=models.CASCADE, related_name="energies")
    source_key = models.CharField(max_length=255, help_text="idempotency key within the scheme")
    composition = models.CharField(max_length=200, help_text="formula of the cell the energy refers to, e.g. Fe4O6")
    elements = ArrayField(models.CharField(max_length=3))
    chemsys = models.CharField(max_length=120, db_index=True)
    natoms = models.FloatField()
    energy_total = models.FloatField(null=True, blank=True, help_text="eV for the composition above")
    energy_per_atom = models.FloatField(null=True, blank=True, help_text="eV/atom")
    formation_energy_per_atom = models.FloatField(null=True, blank=True, help_text="eV/atom, as given by the source")
    stability_value = models.FloatField(null=True, blank=True, help_text="dataset's own stability measure, eV/atom")
    correction = models.FloatField(default=0.0, help_text="energy correction already included in energy_total, eV")
    produced_by = models.CharField(max_length=255, blank=True, help_text="dataset row, DFT job, model version")
    data = models.JSONField(default=dict, blank=True, help_text="other columns and calculation parameters")
    protocol_hash = models.CharField(max_length=12, blank=True, help_text="protocol this energy was computed with")
    excluded_reason = models.CharField(
        max_length=255, blank=True, help_text="why this energy is kept out of hulls (e.g. an unconverged relaxation)"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scheme", "source_key"], name="unique_energy_source_per_scheme"),
            models.UniqueConstraint(
                fields=["scheme", "material"],
                condition=Q(material__isnull=False),
                name="one_energy_per_material_scheme",
            ),
        ]
        indexes = [
            GinIndex(fields=["elements"], name="energy_elements_gin"),
            models.Index(fields=["scheme", "chemsys"]),
        ]

    def __str__(self) -> str:
        return f"{self.composition} @ {self.scheme_id}"


class ElementalReference(models.Model):
    """Energy per atom of an element's reference phase in one total-energy scheme (eV/atom)."""

    scheme = models.ForeignKey(Scheme, on_delete=models.CASCADE, related_name="elemental_references")
    element = models.CharField(max_length=3)
    energy_per_atom = models.FloatField()
    source = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scheme", "element"], name="unique_reference_per_element")]

    def __str__(self) -> str:
        return f"{self.element} @ {self.scheme_id}: {self.energy_per_atom:.4f} eV/atom"


class ChemsysHull(models.Model):
    """Book-keeping of one chemical system's hull in one scheme; ``revision`` grows with every recomputation."""

    scheme = models.ForeignKey(Scheme, on_delete=models.CASCADE, related_name="hulls")
    chemsys = models.CharField(max_length=120)
    elements = ArrayField(models.CharField(max_length=3))
    revision = models.PositiveIntegerField(default=0)
    n_entries = models.PositiveIntegerField(default=0)
    n_stable = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scheme", "chemsys"], name="unique_hull_per_chemsys")]
        indexes = [GinIndex(fields=["elements"], name="hull_elements_gin")]

    def __str__(self) -> str:
        return f"{self.chemsys} @ {self.scheme_id} r{self.revision}"


class HullEntry(models.Model):
    """Where one energy record sits relative to the hull of its own chemical system (same scheme)."""

    class Status(models.TextChoices):
        OK = "ok"
        MISSING_REFERENCES = "missing_references", "missing elemental references"

    energy_record = models.OneToOneField(EnergyRecord, on_delete=models.CASCADE, related_name="hull_entry")
    scheme = models.ForeignKey(Scheme, on_delete=models.CASCADE, related_name="hull_entries")
    material = models.ForeignKey(Material, null=True, blank=True, on_delete=models.CASCADE, related_name="hull_entries")
    chemsys = models.CharField(max_length=120, db_index=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.OK)
    formation_energy_per_atom = models.FloatField(null=True, help_text="eV/atom")
    e_above_hull = models.FloatField(null=True, db_index=True, help_text="eV/atom, 0 on the hull")
    is_stable = models.BooleanField(default=False)
    decomposition_energy = models.FloatField(
        null=True, help_text="eV/atom; for stable phases how far below the hull of all other entries (negative)"
    )
    decomposition = models.JSONField(
        default=list, help_text="[{energy_record, material, formula, fraction}] — products, fractions of atoms"
    )
    hull_revision = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["scheme", "chemsys"]), models.Index(fields=["scheme", "is_stable"])]

    def __str__(self) -> str:
        return f"{self.energy_record_id}: {self.e_above_hull}"
