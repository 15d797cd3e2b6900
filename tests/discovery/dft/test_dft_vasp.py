"""The VASP backend end to end against fake ``sbatch``/``squeue``/``sacct`` scripts this test puts on PATH.

The fake ``sbatch`` "runs" the job by copying a real vasprun.xml from the shared fixtures (read in place through
``GNOMON_DATA_DIR``, never copied into the repository) into the job directory.
"""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import pytest

from discovery.dft import PRESETS, PhysicsError, ResultParseError, TransientDFTError, get_backend
from discovery.dft.vasp_backend import IncompatibleCalculation, parse_vasprun, write_inputs

FAKE_SBATCH = r"""#!/bin/bash
# fake sbatch: --parsable --chdir=DIR SCRIPT ; "runs" the job at once by placing a vasprun.xml
set -e
for arg in "$@"; do case "$arg" in --chdir=*) dir="${arg#--chdir=}";; esac; done
echo "$@" >> "$FAKE_SLURM_LOG"
test -f "$dir/job.sh" && test -f "$dir/INCAR" && test -f "$dir/POSCAR" && test -f "$dir/KPOINTS"
if [ -n "$FAKE_VASPRUN" ]; then
  case "$FAKE_VASPRUN" in *.gz) gunzip -c "$FAKE_VASPRUN" > "$dir/vasprun.xml";; *) cp "$FAKE_VASPRUN" "$dir/vasprun.xml";; esac
fi
echo "fake vasp finished" > "$dir/vasp.out"
echo "4242;cluster"
"""
FAKE_SQUEUE = r"""#!/bin/bash
# fake squeue: RUNNING for the first poll, then the job has left the queue
echo "squeue $@" >> "$FAKE_SLURM_LOG"
n=$(cat "$FAKE_SLURM_DIR/polls" 2>/dev/null || echo 0); echo $((n+1)) > "$FAKE_SLURM_DIR/polls"
if [ "$n" = 0 ]; then echo RUNNING; fi
"""
FAKE_SACCT = r"""#!/bin/bash
echo "sacct $@" >> "$FAKE_SLURM_LOG"
echo "${FAKE_SLURM_FINAL_STATE:-COMPLETED}"
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("squeue", FAKE_SQUEUE), ("sacct", FAKE_SACCT)):
        path = bindir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_LOG", str(tmp_path / "slurm.log"))
    monkeypatch.setenv("FAKE_SLURM_DIR", str(tmp_path))
    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    return tmp_path


@pytest.fixture
def vasp_fixtures(shared_data_dir) -> Path:
    path = shared_data_dir / "vasp_fixtures" / "qmpy"
    if not (path / "Mg_relaxation.vasprun.xml.gz").exists():
        pytest.skip(f"{path}/Mg_relaxation.vasprun.xml.gz not found: set GNOMON_DATA_DIR to shared/data")
    return path


def _mg_hcp():
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.hexagonal(3.21, 5.21), ["Mg", "Mg"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])


def test_inputs_are_materials_project_relax_set_with_a_potcar_spec(tmp_path, monkeypatch):
    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    incar = write_inputs(_mg_hcp(), tmp_path)
    assert {"INCAR", "KPOINTS", "POSCAR", "POTCAR.spec"} <= {p.name for p in tmp_path.iterdir()}
    assert not (tmp_path / "POTCAR").exists()
    assert incar["ENCUT"] == 520 and incar["ISPIN"] == 2
    assert "Mg_pv" in (tmp_path / "POTCAR.spec").read_text()


def test_end_to_end_submit_poll_parse_surfaces_mp2020_incompatibility(fake_slurm, vasp_fixtures, monkeypatch,
                                                                      tmp_path):
    # The qmpy run used the plain Mg POTCAR; MP2020 expects Mg_pv and (with on_error='raise') says so.
    monkeypatch.setenv("FAKE_VASPRUN", str(vasp_fixtures / "Mg_relaxation.vasprun.xml.gz"))
    backend = get_backend("vasp", poll_interval_s=0.01)
    with pytest.raises(IncompatibleCalculation, match="Mg_pv"):
        backend.run(_mg_hcp(), PRESETS["standard"], workdir=tmp_path / "job")
    log = (fake_slurm / "slurm.log").read_text()
    assert "--parsable" in log and "squeue -h -j 4242" in log and "sacct" in log


def test_end_to_end_success_gives_a_computed_structure_entry(fake_slurm, vasp_fixtures, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_VASPRUN", str(vasp_fixtures / "Mg_relaxation.vasprun.xml.gz"))
    backend = get_backend("vasp", poll_interval_s=0.01, check_potcar=False)
    result = backend.run(_mg_hcp(), PRESETS["standard"], workdir=tmp_path / "job")
    assert result.scheme.name == "MP2020"
    assert result.structure.composition.reduced_formula == "Mg"
    assert result.energy_per_atom == pytest.approx(-1.5411, abs=1e-3)
    assert result.settings["slurm_job_id"] == "4242" and result.settings["slurm_state"] == "COMPLETED"
    assert result.extra["computed_entry"]["@class"] == "ComputedStructureEntry"
    assert "#SBATCH --ntasks=16" in (tmp_path / "job" / "job.sh").read_text()


def test_truncated_vasprun_is_a_clear_parse_error(fake_slurm, vasp_fixtures, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_VASPRUN", str(vasp_fixtures / "truncated_convergence.vasprun.xml"))
    backend = get_backend("vasp", poll_interval_s=0.01)
    with pytest.raises(ResultParseError, match="could not be parsed.*killed or is unfinished"):
        backend.run(_mg_hcp(), PRESETS["standard"], workdir=tmp_path / "job")


def test_node_failure_is_transient_and_a_failed_job_without_output_is_not(fake_slurm, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_VASPRUN", "")
    backend = get_backend("vasp", poll_interval_s=0.01)
    monkeypatch.setenv("FAKE_SLURM_FINAL_STATE", "NODE_FAIL")
    with pytest.raises(TransientDFTError, match="NODE_FAIL"):
        backend.run(_mg_hcp(), PRESETS["standard"], workdir=tmp_path / "a")
    monkeypatch.setenv("FAKE_SLURM_FINAL_STATE", "FAILED")
    with pytest.raises(PhysicsError, match="without a vasprun.xml"):
        backend.run(_mg_hcp(), PRESETS["standard"], workdir=tmp_path / "b")


def test_sbatch_failure_is_transient(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text("#!/bin/bash\necho 'sbatch: error: Slurm controller not responding' >&2\nexit 1\n")
    (bindir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(TransientDFTError, match="controller not responding"):
        get_backend("vasp").run(_mg_hcp(), PRESETS["standard"], workdir=tmp_path / "job")


def test_parse_vasprun_reads_gzip_and_plain(vasp_fixtures, tmp_path):
    plain = tmp_path / "vasprun.xml"
    plain.write_bytes(gzip.decompress((vasp_fixtures / "Mg_relaxation.vasprun.xml.gz").read_bytes()))
    entry = parse_vasprun(plain, check_potcar=False)
    assert entry.energy == pytest.approx(-3.0821, abs=1e-3)
    with pytest.raises(ResultParseError, match="does not exist"):
        parse_vasprun(tmp_path / "missing.xml")
