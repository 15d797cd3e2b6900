"""Translation between catalog rows and the API's JSON; no queries or rules live here."""

from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from api import params
from catalog.models import Material, MaterialOrigin
from discovery.campaign_config import BOUNDS, CHOICES, DFT_BACKENDS, HELP, CampaignConfig
from discovery.models import Campaign, CampaignRound

# Columns each API field needs (for .only()); structure is the big one, left out of lists unless asked for.
MATERIAL_FIELD_COLUMNS = {
    "public_id": ("public_id",),
    "formula_reduced": ("formula_reduced",),
    "formula_anonymous": ("formula_anonymous",),
    "chemsys": ("chemsys",),
    "elements": ("elements",),
    "nelements": ("nelements",),
    "nsites": ("nsites",),
    "volume": ("volume",),
    "density": ("density",),
    "spacegroup_number": ("spacegroup_number",),
    "spacegroup_symbol": ("spacegroup_symbol",),
    "crystal_system": ("crystal_system",),
    "formation_energy_per_atom": ("formation_energy_per_atom",),
    "energy_above_hull": ("e_above_hull",),
    "is_stable": ("is_stable",),
    "verdict": ("verdict",),
    "hull_scheme": ("hull_scheme",),
    "origins": (),
    "created_at": ("created_at",),
    "updated_at": ("updated_at",),
    "structure": ("structure",),
}
ALL_MATERIAL_FIELDS = tuple(MATERIAL_FIELD_COLUMNS)
LIST_DEFAULT_FIELDS = tuple(f for f in ALL_MATERIAL_FIELDS if f != "structure")


def parse_fields(raw: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """``fields=public_id,energy_above_hull`` → validated tuple; unknown names are a 400 naming them."""
    if raw is None:
        return default
    wanted = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [name for name in wanted if name not in MATERIAL_FIELD_COLUMNS]
    if unknown or not wanted:
        raise serializers.ValidationError(
            {
                "fields": [
                    f"unknown field(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(ALL_MATERIAL_FIELDS)}"
                ]
            }
        )
    return wanted


def columns_for(fields: tuple[str, ...], ordering_keys: tuple[str, ...] = ()) -> list[str]:
    columns = {"id"} | set(ordering_keys)
    for name in fields:
        columns.update(MATERIAL_FIELD_COLUMNS[name])
    return sorted(columns)


# API field → key in a ``.values()`` row, where they differ.
_VALUE_KEYS = {"energy_above_hull": "e_above_hull", "hull_scheme": "hull_scheme__name"}


def material_values(queryset, fields: tuple[str, ...], ordering_keys: tuple[str, ...] = ()) -> list[dict]:
    """Rows of ``queryset`` as ``.values()`` dicts with what ``fields`` need (no model instances: lists stay cheap)."""
    columns = set(columns_for(fields, ordering_keys)) - {"hull_scheme"}
    if "hull_scheme" in fields:
        columns.add("hull_scheme__name")
    return list(queryset.values(*sorted(columns)))


def represent_materials(rows: list[dict], fields: tuple[str, ...]) -> list[dict]:
    """``material_values`` rows → API dicts (the ``MaterialSerializer`` shape); origins in one extra query."""
    origins: dict[int, list[dict]] = {}
    if "origins" in fields and rows:
        for origin in MaterialOrigin.objects.filter(material_id__in=[r["id"] for r in rows]).order_by("id").values(
            "material_id", "kind", "dataset", "source_id", "licence"
        ):
            origins.setdefault(origin.pop("material_id"), []).append(origin)
    keys = [(name, _VALUE_KEYS.get(name, name)) for name in fields]
    return [
        {name: origins.get(row["id"], []) if name == "origins" else row[key] for name, key in keys} for row in rows
    ]


class OriginSerializer(serializers.ModelSerializer):
    class Meta:
        model = MaterialOrigin
        fields = ["kind", "dataset", "source_id", "licence"]


class MaterialSerializer(serializers.ModelSerializer):
    """A catalog material; energies in eV/atom from the preferred scheme's hull (``hull_scheme``)."""

    energy_above_hull = serializers.FloatField(source="e_above_hull", allow_null=True, read_only=True)
    hull_scheme = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    origins = OriginSerializer(many=True, read_only=True)
    structure = serializers.JSONField(read_only=True, help_text="pymatgen Structure.as_dict()")

    class Meta:
        model = Material
        fields = list(ALL_MATERIAL_FIELDS)
        read_only_fields = fields

    def __init__(self, *args, fields: tuple[str, ...] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if fields is not None:
            for name in set(self.fields) - set(fields):
                self.fields.pop(name)


class MaterialDetailSerializer(MaterialSerializer):
    """One material, with the stability verdict of its hull entry in ``hull_scheme`` (``catalog.verdicts``)."""

    stability_verdict = serializers.JSONField(
        read_only=True, allow_null=True,
        help_text="confirmed | provisional, on_hull, the competing phases it was judged against, the missing ones with "
                  "the reason, and the Materials Project's verdict (Bartel 2020 table); null without a hull entry",
    )

    class Meta(MaterialSerializer.Meta):
        fields = [*MaterialSerializer.Meta.fields, "stability_verdict"]
        read_only_fields = fields


class MaterialFieldsSerializer(MaterialSerializer):
    """Schema of a list item: any subset of the material's fields, as chosen with ``fields``."""

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            field.read_only = False
            field.required = False
        return fields


class HullEntrySerializer(serializers.Serializer):
    material = serializers.CharField(allow_null=True, help_text="public id; null for a composition-only reference")
    composition = serializers.CharField()
    formation_energy_per_atom = serializers.FloatField(allow_null=True, help_text="eV/atom")
    energy_above_hull = serializers.FloatField(allow_null=True, help_text="eV/atom, 0 on the hull")
    is_stable = serializers.BooleanField()
    decomposition_energy = serializers.FloatField(allow_null=True, help_text="eV/atom")
    decomposition = serializers.JSONField(help_text="products and their fractions of atoms")
    status = serializers.CharField()


class HullSerializer(serializers.Serializer):
    chemsys = serializers.CharField()
    scheme = serializers.CharField()
    revision = serializers.IntegerField()
    n_entries = serializers.IntegerField()
    n_stable = serializers.IntegerField()
    updated_at = serializers.DateTimeField()
    entries = HullEntrySerializer(many=True)


class CampaignRoundSerializer(serializers.ModelSerializer):
    class Meta:
        model = CampaignRound
        fields = [
            "index",
            "stage",
            "n_generated",
            "n_deduplicated",
            "n_screened",
            "n_selected",
            "n_dft_done",
            "n_dft_failed",
            "n_new_stable",
            "n_new_on_hull",
            "hit_rate",
            "model_mae",
            "verdicts",
            "generation",
            "timings",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class CampaignSerializer(serializers.ModelSerializer):
    launched_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "elements",
            "max_elements",
            "pipelines",
            "config",
            "status",
            "launched_by",
            "error",
            "created_at",
            "updated_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


def _setting_field(name: str, kind: type, default) -> serializers.Field:
    """The schema of one ``CampaignConfig`` setting, with its bounds and choices (values are checked by
    ``discovery.campaign_config.validate``, which answers with the 400's message)."""
    help_text = HELP.get(name, "")
    if kind is str:
        choices = list(DFT_BACKENDS) if name == "dft_backend" else list(CHOICES[name])
        return serializers.ChoiceField(choices=choices, required=False, help_text=help_text)
    low, high = BOUNDS.get(name, (None, None))
    field_class = serializers.FloatField if kind is float else serializers.IntegerField
    return field_class(required=False, allow_null=name == "kappa_final", min_value=low, max_value=high,
                       help_text=f"{help_text} (default {default})")


class CampaignLaunchSerializer(serializers.Serializer):
    """The settings a staff user sends to queue a campaign (schema only: ``discovery.services`` validates them).

    One optional field per ``CampaignConfig`` setting, built from it; unknown or out-of-range ones are a 400 naming
    them.
    """

    name = serializers.CharField(max_length=120, validators=[RegexValidator(r"^\S.*$")])
    elements = serializers.ListField(
        child=serializers.CharField(validators=[RegexValidator(rf"^{params.ELEMENT}$")]), min_length=2
    )
    pipelines = serializers.ListField(
        child=serializers.ChoiceField(choices=list(CHOICES["pipelines"])), min_length=1, required=False
    )
    locals().update({name: _setting_field(name, kind, default) for name, kind, default in CampaignConfig.settings()})
