"""Writing energies: each value is stored in a scheme whose kind says what it means, and is never reinterpreted.

- ``total_energy`` schemes: ``energy_total`` (eV for the cell in ``composition``) and ``energy_per_atom`` (eV/atom);
- ``formation_energy`` schemes: ``formation_energy_per_atom`` (eV/atom, elements at 0, as published);
- ``stability_value`` schemes: ``stability_value`` (eV/atom, the dataset's own measure; never builds a hull).

A material has at most one energy per scheme. When a second energy arrives for the same material and scheme (two
merged duplicates from one dataset, a re-run), the lower one is kept on the row (it is the one a hull uses) and the other
is listed in ``data["other_values"]`` with its source key, so nothing is lost and re-imports stay idempotent.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from pymatgen.core import Composition

from catalog.models import ElementalReference, EnergyRecord, Material, Scheme
from catalog.protocols import ProtocolMismatch, describe, differences, protocol_hash
from catalog.structures import chemsys_of

logger = logging.getLogger(__name__)

VALUE_FIELD = {
    Scheme.Kind.TOTAL_ENERGY: "energy_per_atom",
    Scheme.Kind.FORMATION_ENERGY: "formation_energy_per_atom",
    Scheme.Kind.STABILITY_VALUE: "stability_value",
}


class EnergyError(ValueError):
    """An energy does not fit its scheme (missing value, wrong kind); the message says which and what to pass."""


class SchemeKindError(EnergyError):
    """A scheme exists with another kind than the data being imported."""


def ensure_scheme(name: str, kind: str, *, protocol: Mapping[str, Any] | None = None, adopt_existing: bool = False,
                  **defaults) -> Scheme:
    """Get or create a scheme; refuse to put energies of another kind, or of another protocol, into an existing one.

    ``protocol``: every setting behind the scheme's energies (``catalog.protocols``). A scheme without a recorded
    protocol adopts it while it holds no energy, or when ``adopt_existing`` (a dataset's scheme made before protocols
    were recorded: its energies are the dataset's own); otherwise energies of unknown settings refuse it.
    """
    digest = protocol_hash(protocol) if protocol else ""
    scheme, created = Scheme.objects.get_or_create(
        name=name, defaults={"kind": kind, "protocol": dict(protocol or {}), "protocol_hash": digest, **defaults}
    )
    if scheme.kind != kind:
        raise SchemeKindError(
            f"scheme {name!r} holds {scheme.kind} values but this data has {kind} values; "
            f"choose another scheme name (--scheme)"
        )
    if digest and scheme.protocol_hash != digest:
        if scheme.protocol_hash or (not adopt_existing and scheme.energies.exists()):
            changed = "; ".join(differences(scheme.protocol, protocol)) or "no protocol recorded on the scheme"
            raise ProtocolMismatch(
                f"scheme {name!r} was computed with protocol {scheme.protocol_hash or '(none recorded)'} "
                f"({describe(scheme.protocol)}); these settings are protocol {digest} ({describe(protocol)}). "
                f"Differences: {changed}. A changed protocol needs a scheme of its own"
            )
        scheme.protocol, scheme.protocol_hash = dict(protocol), digest
        scheme.save(update_fields=["protocol", "protocol_hash"])
    if created:
        logger.info("created scheme %s (%s)%s", name, kind, f", protocol {digest}" if digest else "")
    return scheme


def _as_scheme(scheme: Scheme | str) -> Scheme:
    if isinstance(scheme, Scheme):
        return scheme
    try:
        return Scheme.objects.get(name=scheme)
    except Scheme.DoesNotExist as exc:
        raise EnergyError(f"unknown scheme {scheme!r}: create it first (ensure_scheme)") from exc


@dataclass
class EnergyInput:
    """One energy to store (batch path). ``composition`` is the formula of the cell the values refer to."""

    source_key: str
    composition: str
    material_id: int | None = None
    energy_total: float | None = None
    energy_per_atom: float | None = None
    formation_energy_per_atom: float | None = None
    stability_value: float | None = None
    correction: float = 0.0
    produced_by: str = ""
    data: dict = field(default_factory=dict)
    # The protocol the energy was computed with (a DFT job's backend says); None: the scheme's own (a dataset's rows).
    protocol_hash: str | None = None


def check_protocol(scheme: Scheme, item: EnergyInput) -> str:
    """The protocol hash to store with ``item``; ``ProtocolMismatch`` when it is not the scheme's."""
    if item.protocol_hash is None or item.protocol_hash == scheme.protocol_hash:
        return scheme.protocol_hash
    if not scheme.protocol_hash:  # a scheme without a recorded protocol takes no energy that claims one
        raise ProtocolMismatch(
            f"{item.source_key}: computed with protocol {item.protocol_hash}, but scheme {scheme.name!r} records no "
            "protocol; energies whose settings are known go to a scheme that records them"
        )
    raise ProtocolMismatch(
        f"{item.source_key}: computed with protocol {item.protocol_hash}, but scheme {scheme.name!r} holds protocol "
        f"{scheme.protocol_hash} ({describe(scheme.protocol)}); an energy computed with other settings cannot share "
        "its hull"
    )


def _row_values(scheme: Scheme, item: EnergyInput) -> dict:
    comp = Composition(item.composition)
    if comp.num_atoms <= 0:
        raise EnergyError(f"{item.source_key}: empty composition {item.composition!r}")
    natoms = float(comp.num_atoms)
    values = {
        "energy_total": item.energy_total,
        "energy_per_atom": item.energy_per_atom,
        "formation_energy_per_atom": item.formation_energy_per_atom,
        "stability_value": item.stability_value,
    }
    if scheme.kind == Scheme.Kind.TOTAL_ENERGY:
        if values["energy_total"] is None and values["energy_per_atom"] is not None:
            values["energy_total"] = values["energy_per_atom"] * natoms
        if values["energy_per_atom"] is None and values["energy_total"] is not None:
            values["energy_per_atom"] = values["energy_total"] / natoms
    needed = VALUE_FIELD[scheme.kind]
    if values[needed] is None:
        raise EnergyError(f"{item.source_key}: scheme {scheme.name!r} ({scheme.kind}) needs {needed}")
    return {
        **values,
        "composition": comp.formula.replace(" ", ""),
        "elements": sorted(el.symbol for el in comp.elements),
        "chemsys": chemsys_of(comp),
        "natoms": natoms,
        "correction": item.correction or 0.0,
        "produced_by": item.produced_by,
        "data": dict(item.data),
        "protocol_hash": check_protocol(scheme, item),
    }


@dataclass
class EnergyOutcome:
    created: int = 0
    replaced: int = 0  # a lower energy replaced the material's previous one in the scheme
    kept_other: int = 0  # listed under data["other_values"] of the material's record
    existing: int = 0  # source key already stored (idempotent no-op)
    chemsystems: set[str] = field(default_factory=set)


def record_energies(scheme: Scheme | str, items: Sequence[EnergyInput]) -> EnergyOutcome:
    """Batch version of ``record_energy``; call inside a transaction. Composition-only and material energies alike."""
    scheme = _as_scheme(scheme)
    value_field = VALUE_FIELD[scheme.kind]
    outcome = EnergyOutcome()
    keys = [item.source_key for item in items]
    present: set[str] = set()
    for start in range(0, len(keys), 5000):
        present.update(
            EnergyRecord.objects.filter(scheme=scheme, source_key__in=keys[start:start + 5000]).values_list(
                "source_key", flat=True
            )
        )
    fresh: list[tuple[EnergyInput, dict]] = []
    seen: set[str] = set()
    for item in items:
        if item.source_key in present or item.source_key in seen:
            outcome.existing += 1
            continue
        seen.add(item.source_key)
        fresh.append((item, _row_values(scheme, item)))

    by_material: dict[int, list[tuple[EnergyInput, dict]]] = defaultdict(list)
    to_create: list[EnergyRecord] = []
    for item, values in fresh:
        if item.material_id is None:
            to_create.append(EnergyRecord(scheme=scheme, source_key=item.source_key, **values))
        else:
            by_material[item.material_id].append((item, values))

    current = {
        rec.material_id: rec
        for rec in EnergyRecord.objects.select_for_update().filter(scheme=scheme, material_id__in=list(by_material))
    } if by_material else {}
    to_update: list[EnergyRecord] = []
    for material_id, candidates in by_material.items():
        existing = current.get(material_id)
        candidates = sorted(candidates, key=lambda c: c[1][value_field])
        best_item, best_values = candidates[0]
        others = [_summary(item.source_key, values, value_field) for item, values in candidates[1:]]
        if existing is not None:
            if best_values[value_field] < getattr(existing, value_field):
                previous = _summary(existing.source_key, _record_values(existing), value_field)
                kept = list(existing.data.get("other_values", []))
                existing.source_key = best_item.source_key
                for key, value in best_values.items():
                    setattr(existing, key, value)
                existing.data = {**best_values["data"], "other_values": kept + [previous] + others}
                outcome.replaced += 1
                outcome.kept_other += 1 + len(others)
            else:
                existing.data = {**existing.data,
                                 "other_values": list(existing.data.get("other_values", [])) + [
                                     _summary(best_item.source_key, best_values, value_field)] + others}
                outcome.kept_other += 1 + len(others)
            to_update.append(existing)
            outcome.chemsystems.add(existing.chemsys)
        else:
            values = dict(best_values)
            if others:
                values["data"] = {**values["data"], "other_values": others}
                outcome.kept_other += len(others)
            to_create.append(EnergyRecord(scheme=scheme, source_key=best_item.source_key, material_id=material_id,
                                          **values))
    EnergyRecord.objects.bulk_create(to_create, batch_size=1000, ignore_conflicts=True)
    if to_update:
        EnergyRecord.objects.bulk_update(
            to_update,
            ["source_key", "energy_total", "energy_per_atom", "formation_energy_per_atom", "stability_value",
             "correction", "produced_by", "data", "composition", "elements", "chemsys", "natoms", "protocol_hash"],
            batch_size=500,
        )
    outcome.created += len(to_create)
    outcome.chemsystems.update(rec.chemsys for rec in to_create)
    return outcome


def _record_values(record: EnergyRecord) -> dict:
    return {f: getattr(record, f) for f in ("energy_total", "energy_per_atom", "formation_energy_per_atom",
                                            "stability_value", "produced_by", "composition")}


def _summary(source_key: str, values: dict, value_field: str) -> dict:
    return {"source_key": source_key, value_field: values[value_field], "composition": values["composition"],
            "produced_by": values.get("produced_by", "")}


def record_energy(
    scheme: Scheme | str,
    *,
    source_key: str,
    material: Material | None = None,
    composition: str | Composition | None = None,
    energy_total: float | None = None,
    energy_per_atom: float | None = None,
    formation_energy_per_atom: float | None = None,
    stability_value: float | None = None,
    correction: float = 0.0,
    produced_by: str = "",
    data: dict | None = None,
    update_hull: bool = True,
    protocol_hash: str | None = None,
) -> EnergyRecord:
    """Store one energy (for a material, or composition-only) and, for hull-building schemes, refresh the hull.

    ``composition`` defaults to the material's cell formula. Calling again with the same ``source_key`` returns the
    stored record unchanged. A material keeps one energy per scheme: the lower one (see the module docstring).
    """
    scheme = _as_scheme(scheme)
    if composition is None:
        if material is None:
            raise EnergyError(f"{source_key}: pass a material or a composition")
        composition = material.to_structure().composition.formula
    item = EnergyInput(
        source_key=source_key,
        composition=composition.formula if isinstance(composition, Composition) else str(composition),
        material_id=material.pk if material is not None else None,
        energy_total=energy_total,
        energy_per_atom=energy_per_atom,
        formation_energy_per_atom=formation_energy_per_atom,
        stability_value=stability_value,
        correction=correction,
        produced_by=produced_by,
        data=data or {},
        protocol_hash=protocol_hash,
    )
    with transaction.atomic():
        outcome = record_energies(scheme, [item])
    record = EnergyRecord.objects.filter(scheme=scheme, source_key=source_key).first()
    if record is None and material is not None:  # kept as another value on the material's lower record
        record = EnergyRecord.objects.get(scheme=scheme, material=material)
    if update_hull and (outcome.created or outcome.replaced):
        update_hulls_if_available(scheme, outcome.chemsystems)
    return record


def set_elemental_references(scheme: Scheme | str, energies_per_atom: dict[str, float], *, source: str = "") -> int:
    """Create or update the elemental reference energies (eV/atom) of a total-energy scheme. Returns rows written."""
    scheme = _as_scheme(scheme)
    if scheme.kind != Scheme.Kind.TOTAL_ENERGY:
        raise EnergyError(f"elemental references belong to total-energy schemes; {scheme.name!r} is {scheme.kind}")
    with transaction.atomic():
        for element, energy in energies_per_atom.items():
            ElementalReference.objects.update_or_create(
                scheme=scheme, element=element, defaults={"energy_per_atom": float(energy), "source": source[:255]}
            )
    return len(energies_per_atom)


def update_hulls_if_available(scheme: Scheme, chemsystems: Iterable[str]) -> bool:
    """Recompute the hulls touched by new energies (``catalog.services.hulls``); False when the scheme builds no hull
    (stability values)."""
    chemsystems = sorted(set(chemsystems))
    if not chemsystems or not scheme.builds_hull:
        return False
    from catalog.services.hulls import update_hulls  # hulls import energies: a module-level import would be a cycle

    update_hulls(scheme, chemsystems)
    return True
