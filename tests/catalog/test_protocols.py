"""One protocol per scheme: an energy computed with other settings is refused by name, and old mixed schemes are found."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from catalog.models import EnergyRecord, HullEntry
from catalog.protocols import ProtocolMismatch, protocol_hash
from catalog.services.energies import ensure_scheme, record_energy, set_elemental_references
from tests.factories import make_material, rocksalt

pytestmark = pytest.mark.django_db

FAST = {"code": "GPAW 26.7.0", "ecut_eV": 500.0, "kpoint_spacing_inv_A": 0.5, "smearing_eV": 0.1}
TIGHTER = {**FAST, "ecut_eV": 700.0}


def test_a_scheme_keeps_its_protocol_and_refuses_another():
    scheme = ensure_scheme("GPAW-test", "total_energy", protocol=FAST)
    assert scheme.protocol == FAST and scheme.protocol_hash == protocol_hash(FAST)
    assert ensure_scheme("GPAW-test", "total_energy", protocol=dict(reversed(list(FAST.items())))).pk == scheme.pk
    with pytest.raises(ProtocolMismatch) as err:
        ensure_scheme("GPAW-test", "total_energy", protocol=TIGHTER)
    message = str(err.value)
    assert protocol_hash(FAST) in message and protocol_hash(TIGHTER) in message and "ecut_eV: 500.0 → 700.0" in message


def test_an_energy_of_another_protocol_is_refused_and_nothing_is_written():
    scheme = ensure_scheme("GPAW-test", "total_energy", protocol=FAST)
    material = make_material(rocksalt("Na", "Cl", 5.69))
    with pytest.raises(ProtocolMismatch, match=f"protocol {protocol_hash(TIGHTER)}.*holds protocol {scheme.protocol_hash}"):
        record_energy(scheme, source_key="dftjob:1", material=material, energy_total=-27.0,
                      protocol_hash=protocol_hash(TIGHTER))
    assert not EnergyRecord.objects.exists()
    record = record_energy(scheme, source_key="dftjob:2", material=material, energy_total=-27.0,
                           protocol_hash=protocol_hash(FAST))
    assert record.protocol_hash == scheme.protocol_hash
    # a dataset row (no hash of its own) takes the scheme's
    other = record_energy(scheme, source_key="row:1", composition="Na2Cl2", energy_total=-26.0)
    assert other.protocol_hash == scheme.protocol_hash


def test_a_scheme_without_a_recorded_protocol_takes_no_energy_that_claims_one():
    legacy = ensure_scheme("legacy", "total_energy")
    record_energy(legacy, source_key="old:1", composition="NaCl", energy_total=-6.0)
    with pytest.raises(ProtocolMismatch, match="records no protocol"):
        record_energy(legacy, source_key="dftjob:3", composition="NaCl", energy_total=-6.1,
                      protocol_hash=protocol_hash(FAST))
    with pytest.raises(ProtocolMismatch, match="none recorded"):
        ensure_scheme("legacy", "total_energy", protocol=FAST)
    # a dataset's own scheme, made before protocols were recorded, adopts the dataset's protocol
    adopted = ensure_scheme("legacy", "total_energy", protocol=FAST, adopt_existing=True)
    assert adopted.protocol_hash == protocol_hash(FAST)


def _dft_energy(scheme, tag: str, structure, energy_total: float, ecut: float, converged: bool = True):
    return record_energy(scheme, source_key=f"dftjob:{tag}", material=make_material(structure, source_id=tag),
                         energy_total=energy_total,
                         data={"settings": {"code": "GPAW 26.7.0", "ecut_eV": ecut},
                               "relaxation": {"converged": converged}})


def test_check_protocols_reports_mixed_cutoffs_and_keeps_unconverged_energies_out_of_hulls(capsys):
    scheme = ensure_scheme("GPAW-PBE-fast", "total_energy")  # as written before protocols were recorded
    set_elemental_references(scheme, {"Na": -1.3, "Cl": -1.8})
    good = _dft_energy(scheme, "1", rocksalt("Na", "Cl", 5.69), -2 * 3.1 - 8.0, ecut=350.0)
    bad = _dft_energy(scheme, "2", rocksalt("Na", "Cl", 5.2), -2 * 3.1 - 9.0, ecut=500.0, converged=False)
    assert HullEntry.objects.filter(energy_record=bad).exists()  # the unconverged one even sits on the hull
    with pytest.raises(SystemExit) as exit_:
        call_command("check_protocols")
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert "MIXED ecut_eV: 350.0, 500.0" in out and "1 energies from unconverged relaxations" in out
    assert "GPAW-PBE-fast" in err
    with pytest.raises(SystemExit):
        call_command("check_protocols", mark_unconverged=True)
    bad.refresh_from_db()
    assert bad.excluded_reason.startswith("relaxation did not converge")
    assert not HullEntry.objects.filter(energy_record=bad).exists()
    assert HullEntry.objects.get(energy_record=good).e_above_hull == pytest.approx(0.0)


def test_mp2020_corrections_come_from_pymatgens_table():
    from catalog.corrections import mp2020_correction_per_atom

    assert mp2020_correction_per_atom("MgO") == pytest.approx(-0.687 / 2)
    assert mp2020_correction_per_atom("Li2O") == pytest.approx(-0.687 / 3)
    assert mp2020_correction_per_atom("Na2O2") == pytest.approx(-0.465 / 2)  # a peroxide, not an oxide
    assert mp2020_correction_per_atom("TiN") == pytest.approx(-0.361 / 2)
    assert mp2020_correction_per_atom("CaF2") == pytest.approx(-0.462 * 2 / 3)
    assert mp2020_correction_per_atom("TiAl") == 0.0 and mp2020_correction_per_atom("Cu") == 0.0
