"""Auditing schemes for mixed protocols and unconverged energies (``manage.py check_protocols``).

Energies written before schemes recorded their protocol can mix settings inside one scheme (the old ``fast`` GPAW
preset chose 350 or 500 eV per structure) or come from relaxations that stopped at their step limit. This finds them
from the settings each energy stored with it, and ``mark_unconverged`` keeps the unconverged ones out of every hull
(``EnergyRecord.excluded_reason``), recomputing the hulls they were on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction

from catalog.models import EnergyRecord, HullEntry, Scheme

# The stored settings that must agree within a scheme (keys of EnergyRecord.data["settings"], as DFT jobs write them).
PROTOCOL_SETTINGS = ("code", "setups", "ecut_eV", "kpoint_spacing_inv_A", "smearing")
UNCONVERGED = "relaxation did not converge within its step limit"


@dataclass
class SchemeAudit:
    scheme: str
    protocol_hash: str
    energies: int = 0
    settings_seen: dict[str, list] = field(default_factory=dict)  # setting → distinct values (only where > 1)
    without_protocol: int = 0  # energies carrying no protocol hash in a scheme that records one
    unconverged: list[int] = field(default_factory=list)  # EnergyRecord ids still entering hulls
    excluded: int = 0

    @property
    def mixed(self) -> bool:
        return bool(self.settings_seen)

    def lines(self) -> list[str]:
        out = [f"{self.scheme} (protocol {self.protocol_hash or 'not recorded'}): {self.energies} energies"]
        for key, values in self.settings_seen.items():
            out.append(f"  MIXED {key}: {', '.join(map(str, values))}")
        if self.without_protocol:
            out.append(f"  {self.without_protocol} energies carry no protocol hash")
        if self.unconverged:
            out.append(f"  {len(self.unconverged)} energies from unconverged relaxations still enter hulls")
        if self.excluded:
            out.append(f"  {self.excluded} energies kept out of hulls")
        return out


def audit_schemes(schemes: list[Scheme] | None = None) -> list[SchemeAudit]:
    """One ``SchemeAudit`` per hull-building scheme with energies."""
    audits = []
    for scheme in schemes or Scheme.objects.exclude(kind=Scheme.Kind.STABILITY_VALUE).order_by("name"):
        audit = SchemeAudit(scheme.name, scheme.protocol_hash)
        seen: dict[str, set] = defaultdict(set)
        rows = EnergyRecord.objects.filter(scheme=scheme).values_list("id", "data", "protocol_hash", "excluded_reason")
        for pk, data, digest, excluded in rows.iterator(chunk_size=2000):
            audit.energies += 1
            settings = (data or {}).get("settings") or {}
            for key in PROTOCOL_SETTINGS:
                if key in settings:
                    seen[key].add(str(settings[key]))
            if scheme.protocol_hash and not digest:
                audit.without_protocol += 1
            if excluded:
                audit.excluded += 1
            elif ((data or {}).get("relaxation") or {}).get("converged") is False:
                audit.unconverged.append(pk)
        audit.settings_seen = {k: sorted(v) for k, v in seen.items() if len(v) > 1}
        if audit.energies:
            audits.append(audit)
    return audits


def mark_unconverged(audits: list[SchemeAudit]) -> int:
    """Keep the audits' unconverged energies out of hulls and recompute the hulls they were on; returns how many."""
    from catalog.services.hulls import update_hulls

    marked = 0
    for audit in audits:
        if not audit.unconverged:
            continue
        scheme = Scheme.objects.get(name=audit.scheme)
        with transaction.atomic():
            records = EnergyRecord.objects.filter(pk__in=audit.unconverged)
            chemsystems = sorted(set(records.values_list("chemsys", flat=True)))
            marked += records.update(excluded_reason=UNCONVERGED)
            HullEntry.objects.filter(energy_record_id__in=audit.unconverged).delete()
            update_hulls(scheme, chemsystems)
        audit.excluded += len(audit.unconverged)
        audit.unconverged = []
    return marked
