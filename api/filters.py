"""Query parameters of the materials list and the export, named like the Materials Project API's.

The FilterSet only translates: it checks each parameter's shape (the same patterns the OpenAPI schema publishes, see
``api.params``), turns the parameters into a ``catalog.selectors.MaterialQuery`` and lets ``search_materials``
(shared with the web UI and OPTIMADE) run it. Errors come back as 400s naming the parameter.
"""

from __future__ import annotations

import django_filters
from django import forms
from rest_framework.exceptions import ValidationError

from api import params
from api.params import API_ORDERING_FIELDS, ORDERING_ALIASES
from catalog.models import Material
from catalog.selectors import CRYSTAL_SYSTEMS, InvalidQuery, MaterialQuery, search_materials
from catalog.verdicts import VERDICT_STATES

# API parameter name → MaterialQuery field, where they differ (MP API names on the left).
QUERY_FIELD_FOR_PARAM = {
    "energy_above_hull_min": "e_above_hull_min",
    "energy_above_hull_max": "e_above_hull_max",
    "formation_energy_per_atom_min": "formation_energy_min",
    "formation_energy_per_atom_max": "formation_energy_max",
}
PARAM_FOR_QUERY_FIELD = {v: k for k, v in QUERY_FIELD_FOR_PARAM.items()}
RANGES = (
    ("energy_above_hull_min", "energy_above_hull_max"),
    ("formation_energy_per_atom_min", "formation_energy_per_atom_max"),
    ("nelements_min", "nelements_max"),
)
MAX_INT = 2**31 - 1


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _pattern(pattern: str, example: str):
    def validate(value: str) -> None:
        if not params.matches(pattern, value):
            raise forms.ValidationError(f"malformed value '{value[:60]}'; expected e.g. '{example}'")

    return [validate]


def _text(help_text: str, pattern: str, example: str) -> django_filters.CharFilter:
    return django_filters.CharFilter(
        method="_noop", help_text=help_text, validators=_pattern(pattern, example), strip=False
    )


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class FloatFilter(django_filters.NumberFilter):
    field_class = forms.FloatField


class StrictBooleanField(forms.NullBooleanField):
    """'true'/'false' (or 1/0); anything else is an error rather than "no constraint"."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value in (True, "true", "True", "1"):
            return True
        if value in (False, "false", "False", "0"):
            return False
        raise forms.ValidationError(f"'{value}' is not a boolean; use true or false")

    def validate(self, value):
        pass


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


def _integer(help_text: str, low: int, high: int) -> IntegerFilter:
    return IntegerFilter(method="_noop", help_text=help_text, min_value=low, max_value=high)


def _number(help_text: str) -> FloatFilter:
    return FloatFilter(method="_noop", help_text=help_text)


class MaterialFilterSet(django_filters.FilterSet):
    elements = _text(
        "Comma-separated elements the material must contain, e.g. `Li,Fe,O`.", params.ELEMENT_LIST, "Li,Fe,O"
    )
    exclude_elements = _text("Comma-separated elements the material must not contain.", params.ELEMENT_LIST, "Pb,Cd")
    chemsys = _text("Chemical system, exactly (`Fe-Li-O`) or with wildcards (`Li-*-O`).", params.CHEMSYS, "Li-*-O")
    formula = _text("Reduced formula (`LiFePO4`) or anonymous formula (`ABO3`).", params.FORMULA, "LiFePO4")
    nelements = _integer("Exact number of elements.", 1, 118)
    nelements_min = _integer("Least number of elements.", 1, 118)
    nelements_max = _integer("Most number of elements.", 1, 118)
    energy_above_hull_min = _number("Energy above the hull, eV/atom, inclusive lower bound.")
    energy_above_hull_max = _number("Energy above the hull, eV/atom, inclusive upper bound.")
    formation_energy_per_atom_min = _number("Formation energy, eV/atom, inclusive lower bound.")
    formation_energy_per_atom_max = _number("Formation energy, eV/atom, inclusive upper bound.")
    is_stable = StrictBooleanFilter(method="_noop", help_text="On the convex hull of its scheme.")
    verdict = django_filters.ChoiceFilter(
        method="_noop", choices=[(v, v) for v in VERDICT_STATES],
        help_text="`confirmed`: every competing phase has an energy in the material's scheme; `provisional`: some are "
        "missing. With `is_stable=true`: the confirmed-stable materials.",
    )
    spacegroup_number = _integer("International space group number.", 1, 230)
    crystal_system = django_filters.ChoiceFilter(
        method="_noop", choices=[(c, c) for c in CRYSTAL_SYSTEMS], help_text="Crystal system."
    )
    origin = _text(
        "Dataset name (e.g. `perov_5`), or `campaign` for anything a campaign discovered.", params.ORIGIN, "perov_5"
    )
    campaign = _integer("Id of the campaign that discovered it.", 1, MAX_INT)
    ordering = _text(
        "Comma-separated sort keys, `-` for descending, from: " + ", ".join(API_ORDERING_FIELDS) + ".",
        params.ORDERING,
        "-energy_above_hull",
    )

    class Meta:
        model = Material
        fields: list[str] = []

    def _noop(self, queryset, name, value):  # every filter is applied at once by filter_queryset
        return queryset

    def to_query(self) -> MaterialQuery:
        kwargs: dict = {}
        for param, value in self.form.cleaned_data.items():
            if value is None or value == "":
                continue
            if param in ("elements", "exclude_elements"):
                kwargs[param] = _split(value)
            elif param == "chemsys":
                kwargs[param] = params.dedupe_chemsys(value)
            elif param == "ordering":
                kwargs["ordering"] = tuple(
                    ("-" if key.startswith("-") else "") + ORDERING_ALIASES.get(key.lstrip("-"), key.lstrip("-"))
                    for key in _split(value)
                )
            else:
                kwargs[QUERY_FIELD_FOR_PARAM.get(param, param)] = value
        return MaterialQuery(**kwargs)

    def is_empty_range(self) -> bool:
        """``min > max`` is a well-formed question with an empty answer (the schema cannot forbid it)."""
        data = self.form.cleaned_data
        return any(
            data.get(low) is not None and data.get(high) is not None and data[low] > data[high] for low, high in RANGES
        )

    def filter_queryset(self, queryset):
        if self.is_empty_range():
            return Material.objects.none()
        try:
            return search_materials(self.to_query())
        except InvalidQuery as exc:
            param = PARAM_FOR_QUERY_FIELD.get(exc.param, exc.param)
            raise ValidationError({param: [exc.message]}) from exc


def search_from_params(query_params) -> tuple[MaterialQuery, object]:
    """Validate request parameters and return (query, ordered queryset); a bad parameter raises the 400."""
    empty = [name for name in MaterialFilterSet.base_filters if query_params.get(name) == ""]
    if empty:
        raise ValidationError({name: ["must not be empty; leave the parameter out for no constraint"] for name in empty})
    filterset = MaterialFilterSet(data=query_params, queryset=Material.objects.all())
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.to_query(), filterset.qs
