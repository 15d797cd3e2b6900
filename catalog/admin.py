"""Read-mostly admin for the catalog: rows are written by services (imports, DFT), so the admin mostly looks."""

from __future__ import annotations

from django.contrib import admin

from catalog.models import ChemsysHull, ElementalReference, EnergyRecord, HullEntry, Material, MaterialOrigin, Scheme


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewing and searching only; deletion stays possible for superusers cleaning up a bad import."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class MaterialOriginInline(admin.TabularInline):
    model = MaterialOrigin
    extra = 0
    can_delete = False
    fields = ("kind", "dataset", "source_id", "licence", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class EnergyRecordInline(admin.TabularInline):
    model = EnergyRecord
    extra = 0
    can_delete = False
    fields = ("scheme", "energy_per_atom", "formation_energy_per_atom", "stability_value", "correction", "source_key")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Scheme)
class SchemeAdmin(admin.ModelAdmin):
    """Schemes are the one thing curators edit (descriptions, display priority); the kind never changes here."""

    list_display = ("name", "kind", "level_of_theory", "is_dft", "correction_policy", "display_priority")
    list_filter = ("kind", "is_dft")
    search_fields = ("name", "level_of_theory")
    readonly_fields = ("kind", "created_at")


@admin.register(Material)
class MaterialAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "formula_reduced", "chemsys", "nsites", "spacegroup_symbol", "e_above_hull",
                    "is_stable", "created_at")
    list_filter = ("nelements", "crystal_system", "is_stable")
    search_fields = ("=public_id", "formula_reduced", "=chemsys")
    exclude = ("structure",)
    inlines = (MaterialOriginInline, EnergyRecordInline)
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) over a million rows on every page is slow


@admin.register(MaterialOrigin)
class MaterialOriginAdmin(ReadOnlyAdmin):
    list_display = ("dataset", "source_id", "kind", "material", "licence", "created_at")
    list_filter = ("kind", "dataset")
    search_fields = ("=source_id", "=material__public_id", "material__formula_reduced")
    raw_id_fields = ("material",)
    show_full_result_count = False


@admin.register(EnergyRecord)
class EnergyRecordAdmin(ReadOnlyAdmin):
    list_display = ("composition", "scheme", "material", "energy_per_atom", "formation_energy_per_atom",
                    "stability_value", "correction", "produced_by")
    list_filter = ("scheme",)
    search_fields = ("=material__public_id", "composition", "=chemsys", "=source_key")
    raw_id_fields = ("material",)
    list_select_related = ("scheme", "material")
    show_full_result_count = False


@admin.register(ElementalReference)
class ElementalReferenceAdmin(ReadOnlyAdmin):
    list_display = ("element", "scheme", "energy_per_atom", "source")
    list_filter = ("scheme",)
    search_fields = ("=element",)


@admin.register(ChemsysHull)
class ChemsysHullAdmin(ReadOnlyAdmin):
    list_display = ("chemsys", "scheme", "revision", "n_entries", "n_stable", "updated_at")
    list_filter = ("scheme",)
    search_fields = ("=chemsys",)


@admin.register(HullEntry)
class HullEntryAdmin(ReadOnlyAdmin):
    list_display = ("energy_record", "scheme", "material", "chemsys", "status", "e_above_hull", "is_stable")
    list_filter = ("scheme", "status", "is_stable")
    search_fields = ("=material__public_id", "=chemsys", "material__formula_reduced")
    raw_id_fields = ("energy_record", "material")
    show_full_result_count = False
