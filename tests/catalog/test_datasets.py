"""The seed-dataset registry: pinned sources and checksums, file resolution order, download, and real small loads."""

from __future__ import annotations

import io
import re
import urllib.error
from dataclasses import replace
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from catalog import datasets
from catalog.models import ElementalReference, EnergyRecord, Material, MaterialOrigin, Scheme

SHARED = Path(settings.DATA_DIR)
needs_shared = pytest.mark.skipif(not (SHARED / "cdvae/perov_5/val.csv").is_file(),
                                  reason="GNOMON_DATA_DIR does not hold the shared seed files")


def tiny_dataset(tmp_path, payload: bytes = b"formula,target\nNaCl,-2.0\n", sha: str | None = None):
    import hashlib

    sha = sha or hashlib.sha256(payload).hexdigest()
    return replace(datasets.BARTEL_2020, name="tiny", folder="tiny",
                   files=(datasets.DatasetFile("x.csv", sha, "https://example.invalid/x.csv"),)), payload


def test_registry_is_complete_and_pinned():
    assert set(datasets.REGISTRY) == {"perov_5", "carbon_24", "aviary_hf_n_ti_zr_zn", "gpaw-pbe-bootstrap",
                                      "mp_elemental_refs", "bartel2020_mp_stability"}
    for dataset in datasets.REGISTRY.values():
        assert dataset.licence and dataset.citation and dataset.count > 0
        for file in dataset.files:
            assert re.fullmatch(r"[0-9a-f]{64}", file.sha256)
            if file.url is not None:
                assert re.match(r"https://raw\.githubusercontent\.com/[\w-]+/[\w-]+/[0-9a-f]{8}/", file.url)
    assert datasets.PEROV_5.scheme.kind == Scheme.Kind.STABILITY_VALUE
    assert datasets.CARBON_24.scheme.kind == Scheme.Kind.TOTAL_ENERGY
    assert datasets.BARTEL_2020.scheme.kind == Scheme.Kind.FORMATION_ENERGY
    assert datasets.MP_ELEMENTAL_REFS.scheme.name == "MP2020"


@needs_shared
@pytest.mark.parametrize("name", sorted(datasets.REGISTRY))
def test_shared_copies_match_the_registry_checksums(name):
    files = datasets.resolve_files(datasets.get_dataset(name))
    assert all(path.is_file() for path in files.values())


def test_checksum_mismatch_is_an_error(tmp_path):
    dataset, payload = tiny_dataset(tmp_path, sha="0" * 64)
    (tmp_path / "x.csv").write_bytes(payload)
    with pytest.raises(datasets.ChecksumMismatch, match="does not match"):
        datasets.resolve_files(dataset, path=tmp_path)


def test_download_goes_to_the_cache_and_is_verified(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    settings.DATASET_CACHE_DIR = tmp_path / "cache"
    dataset, payload = tiny_dataset(tmp_path)
    calls = []

    def opener(url, timeout):
        calls.append(url)
        return io.BytesIO(payload)

    (path,) = datasets.resolve_files(dataset, opener=opener).values()
    assert path == tmp_path / "cache" / "tiny" / "x.csv" and path.read_bytes() == payload
    datasets.resolve_files(dataset, opener=opener)  # second time from the cache
    assert calls == ["https://example.invalid/x.csv"]

    bad, _ = tiny_dataset(tmp_path, sha="1" * 64)
    path.unlink()
    with pytest.raises(datasets.ChecksumMismatch):
        datasets.resolve_files(bad, opener=opener)
    assert not list((tmp_path / "cache" / "tiny").iterdir())  # nothing half-downloaded is left behind


def test_offline_is_a_clear_message(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    settings.DATASET_CACHE_DIR = tmp_path / "cache"
    dataset, _ = tiny_dataset(tmp_path)

    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(datasets.DatasetUnavailable, match="Offline\\? Put the files in"):
        datasets.resolve_files(dataset, opener=offline)


@pytest.mark.django_db
def test_load_seed_without_files_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="not found under"):
        call_command("load_seed", "--dataset", "perov_5", "--path", str(tmp_path), "--no-progress")


@needs_shared
@pytest.mark.django_db
def test_load_seed_small_slice_of_the_real_files():
    out = io.StringIO()
    call_command("load_seed", "--limit", "15", "--workers", "1", "--no-progress", stdout=out, stderr=io.StringIO())
    text = out.getvalue()

    perov = EnergyRecord.objects.filter(scheme__name="dataset:perov5-castelli")
    assert perov.count() == 15
    assert all(r.stability_value is not None and r.formation_energy_per_atom is None for r in perov)
    assert "heat_all" in perov.first().data

    bartel = EnergyRecord.objects.filter(scheme__name="MP-bartel2020")
    assert bartel.count() == 15 and not bartel.filter(material__isnull=False).exists()
    first = bartel.get(source_key="H6Mg2Ru1")
    assert first.formation_energy_per_atom == pytest.approx(-0.427297841857777)
    assert first.data["published_decomposition_energy"] is not None

    refs = dict(ElementalReference.objects.filter(scheme__name="MP2020").values_list("element", "energy_per_atom"))
    assert len(refs) == 89
    assert refs["Li"] == pytest.approx(-1.9089, abs=1e-4) and refs["O"] == pytest.approx(-4.9467, abs=1e-4)

    gpaw = EnergyRecord.objects.filter(scheme__name="GPAW-PBE-bootstrap")
    assert gpaw.count() == 15 and gpaw.first().data["parameters"]["code"] == "GPAW 26.7.0"
    assert EnergyRecord.objects.filter(scheme__name="dataset:aviary-taata").count() == 15
    carbon = Scheme.objects.get(name="dataset:carbon24-airss")
    assert ElementalReference.objects.get(scheme=carbon, element="C").energy_per_atom < -154
    assert MaterialOrigin.objects.filter(dataset="carbon_24").count() == 15
    assert "perov_5: read 15" in text

    before = (Material.objects.count(), MaterialOrigin.objects.count(), EnergyRecord.objects.count())
    call_command("load_seed", "--limit", "15", "--workers", "1", "--no-progress", stdout=io.StringIO(),
                 stderr=io.StringIO())
    assert (Material.objects.count(), MaterialOrigin.objects.count(), EnergyRecord.objects.count()) == before
    # one composition-only dataset alone, a second time: nothing new, and no "nothing could be loaded"
    again = io.StringIO()
    call_command("load_seed", "--dataset", "bartel2020_mp_stability", "--limit", "15", "--no-progress", stdout=again,
                 stderr=io.StringIO())
    assert "already present 15" in again.getvalue()
    # every seed scheme records the protocol its energies were computed with
    bootstrap = Scheme.objects.get(name="GPAW-PBE-bootstrap")
    assert bootstrap.protocol["setups"] == "Debian gpaw-data 0.9.20000" and bootstrap.protocol_hash
    assert {r.protocol_hash for r in gpaw} == {bootstrap.protocol_hash}


def test_every_dataset_names_a_known_loader():
    unknown = {d.name: d.loader for d in datasets.REGISTRY.values() if d.loader not in datasets.LOADERS}
    assert not unknown
