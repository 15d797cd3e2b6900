"""VASP on a SLURM cluster: Materials-Project-compatible inputs, ``sbatch`` + ``squeue``/``sacct``, vasprun parsing.

Inputs come from pymatgen's ``MPRelaxSet`` (the Materials Project's relaxation settings). Without POTCAR files (this
machine) a ``POTCAR.spec`` names the POTCARs instead; on a cluster with ``PMG_VASP_PSP_DIR`` set the real ``POTCAR`` is
written. Jobs are submitted with ``sbatch --parsable`` and polled with ``squeue`` (while queued or running) and then
``sacct`` (final state), locally or over SSH (``host``: commands run as ``ssh HOST ...`` and files move with ``scp``).

Results: ``Vasprun(...).get_computed_entry(inc_structure=True)`` with MP2020 corrections. ``MaterialsProject2020
Compatibility.process_entries`` silently drops entries it cannot correct unless told ``on_error='raise'``; we pass it, so
an unknown run type or foreign POTCARs become an ``IncompatibleCalculation`` with pymatgen's reason.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry

from catalog.protocols import MATERIALS_PROJECT_GGA_U
from discovery.dft.base import DFTError, DFTResult, PhysicsError, ResultParseError, SchemeSpec, TransientDFTError
from discovery.dft.presets import Preset

# sacct states: which ones mean "try again" (the machine failed) and which mean "this calculation failed".
TRANSIENT_STATES = {"NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "REQUEUED", "DEADLINE"}
FAILED_STATES = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY"}
ACTIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUE_HOLD", "RESIZING"}


class IncompatibleCalculation(DFTError):
    """MP2020 cannot correct this run (unknown run type, foreign POTCARs): the energy would not be comparable."""


class SlurmError(TransientDFTError):
    pass


@dataclass
class SlurmSubmitter:
    """Submits a directory's ``job.sh`` with sbatch and polls it to a final state."""

    host: str | None = None  # None: local commands; else ssh HOST
    remote_root: str | None = None  # where job directories live on the cluster (ssh only)
    poll_interval_s: float = 30.0
    timeout_s: float = 7 * 24 * 3600.0

    def _run(self, command: list[str]) -> str:
        argv = ["ssh", self.host, shlex.join(command)] if self.host else command
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SlurmError(f"{argv[0]} failed: {exc}") from exc
        if out.returncode != 0:
            raise SlurmError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr.strip()[:500]}")
        return out.stdout

    def remote_dir(self, workdir: Path) -> str:
        return f"{self.remote_root.rstrip('/')}/{workdir.name}" if self.host and self.remote_root else str(workdir)

    def upload(self, workdir: Path) -> None:
        if self.host:
            subprocess.run(["scp", "-rq", str(workdir), f"{self.host}:{self.remote_dir(workdir)}"], check=True,
                           timeout=600)

    def download(self, workdir: Path, names: tuple[str, ...] = ("vasprun.xml", "OUTCAR", "vasp.out")) -> None:
        if self.host:
            for name in names:
                subprocess.run(["scp", "-q", f"{self.host}:{self.remote_dir(workdir)}/{name}", str(workdir / name)],
                               check=False, timeout=600)

    def submit(self, workdir: Path) -> str:
        self.upload(workdir)
        out = self._run(["sbatch", "--parsable", f"--chdir={self.remote_dir(workdir)}",
                         f"{self.remote_dir(workdir)}/job.sh"])
        job_id = out.strip().split(";")[0]
        if not job_id.isdigit():
            raise SlurmError(f"sbatch printed no job id: {out!r}")
        return job_id

    def state(self, job_id: str) -> str:
        """SLURM state of the job: from squeue while it is known there, else from sacct."""
        queued = self._run(["squeue", "-h", "-j", job_id, "-o", "%T"]).strip()
        if queued:
            return queued.splitlines()[0].strip()
        accounted = self._run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"]).strip()
        if not accounted:
            return "UNKNOWN"
        return accounted.splitlines()[0].split()[0].strip()  # "CANCELLED by 123" -> CANCELLED

    def wait(self, job_id: str) -> str:
        deadline = time.monotonic() + self.timeout_s
        while True:
            state = self.state(job_id)
            if state not in ACTIVE_STATES and state != "UNKNOWN":
                return state
            if time.monotonic() > deadline:
                raise SlurmError(f"SLURM job {job_id} still {state} after {self.timeout_s:.0f} s")
            time.sleep(self.poll_interval_s)


def write_inputs(structure: Structure, workdir: Path, *, user_incar_settings: dict | None = None) -> dict:
    """INCAR/KPOINTS/POSCAR (+ POTCAR, or POTCAR.spec without PMG_VASP_PSP_DIR) from MPRelaxSet; returns the INCAR."""
    from pymatgen.io.vasp.sets import MPRelaxSet

    input_set = MPRelaxSet(structure, user_incar_settings=user_incar_settings or {})
    have_potcars = bool(os.environ.get("PMG_VASP_PSP_DIR"))
    input_set.write_input(str(workdir), potcar_spec=not have_potcars)
    return dict(input_set.incar)


def parse_vasprun(path: Path, *, check_potcar: bool = True) -> ComputedStructureEntry:
    """A ``ComputedStructureEntry`` with MP2020 corrections; clear errors for truncated or uncorrectable runs."""
    from pymatgen.entries.compatibility import CompatibilityError, MaterialsProject2020Compatibility
    from pymatgen.io.vasp import Vasprun

    if not Path(path).exists():
        raise ResultParseError(f"{path} does not exist: VASP wrote no vasprun.xml (see vasp.out / slurm-*.out)")
    try:
        vasprun = Vasprun(str(path), parse_potcar_file=False)
    except Exception as exc:  # noqa: BLE001 - lxml/ValueError on truncated or corrupt files
        raise ResultParseError(
            f"{path} could not be parsed ({type(exc).__name__}: {exc}); the run was probably killed or is unfinished"
        ) from exc
    if not vasprun.converged_electronic:
        raise PhysicsError(f"{path}: the last ionic step's SCF did not converge (NELM reached)")
    entry = vasprun.get_computed_entry(inc_structure=True)
    entry.data["converged_ionic"] = vasprun.converged_ionic
    try:
        processed = MaterialsProject2020Compatibility(check_potcar=check_potcar).process_entries(
            [entry], on_error="raise"
        )
    except CompatibilityError as exc:
        raise IncompatibleCalculation(f"{path}: MP2020 corrections cannot be applied: {exc}") from exc
    if not processed:
        raise IncompatibleCalculation(f"{path}: MP2020 compatibility dropped the entry (run type {vasprun.run_type})")
    return processed[0]


JOB_SCRIPT = """#!/bin/bash
#SBATCH --job-name={name}
#SBATCH --nodes=1
#SBATCH --ntasks={ntasks}
#SBATCH --time={time}
{extra}
{command} > vasp.out 2>&1
"""


class VaspBackend:
    name = "vasp"
    is_dft = True

    def __init__(self, *, command: str | None = None, host: str | None = None, remote_root: str | None = None,
                 partition: str | None = None, account: str | None = None, ntasks: int = 16,
                 poll_interval_s: float = 30.0, check_potcar: bool = True, **_options: object) -> None:
        self.command = command or "srun vasp_std"
        self.partition = partition
        self.account = account
        self.ntasks = ntasks
        self.check_potcar = check_potcar
        self.submitter = SlurmSubmitter(host=host, remote_root=remote_root, poll_interval_s=poll_interval_s)

    def scheme_for(self, preset: Preset) -> SchemeSpec:
        # MPRelaxSet energies with MP2020 corrections are comparable with the Materials Project's own (scheme MP2020).
        return SchemeSpec(
            name="MP2020",
            level_of_theory="VASP, PBE(+U), PAW, 520 eV, MPRelaxSet",
            is_dft=True,
            correction_policy="MP2020 (MaterialsProject2020Compatibility, anion and U corrections)",
            description="Materials Project compatible VASP energies",
            protocol=MATERIALS_PROJECT_GGA_U,
        )

    def job_script(self, name: str, preset: Preset) -> str:
        hours = max(1, preset.time_limit_s // 3600)
        extra = "\n".join(
            line for line in (f"#SBATCH --partition={self.partition}" if self.partition else "",
                              f"#SBATCH --account={self.account}" if self.account else "") if line
        )
        return JOB_SCRIPT.format(name=name, ntasks=self.ntasks, time=f"{hours:02d}:00:00", extra=extra,
                                 command=self.command)

    def run(self, structure: Structure, preset: Preset, *, workdir: Path, is_molecule: bool = False) -> DFTResult:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        incar = write_inputs(structure, workdir)
        (workdir / "job.sh").write_text(self.job_script(f"gnomon-{workdir.name}", preset))
        job_id = self.submitter.submit(workdir)
        state = self.submitter.wait(job_id)
        self.submitter.download(workdir)
        log = _tail(workdir / "vasp.out")
        if state in TRANSIENT_STATES:
            raise TransientDFTError(f"SLURM job {job_id} ended {state}; resubmitting may work")
        if state in FAILED_STATES and not (workdir / "vasprun.xml").exists():
            raise PhysicsError(f"SLURM job {job_id} ended {state} without a vasprun.xml. vasp.out tail:\n{log}")
        entry = parse_vasprun(workdir / "vasprun.xml", check_potcar=self.check_potcar)
        return DFTResult(
            energy_total=float(entry.energy),
            correction=float(entry.correction),
            structure=entry.structure,
            initial_structure=structure,
            scheme=self.scheme_for(preset),
            settings={"code": "VASP", "input_set": "MPRelaxSet", "incar": {k: _plain(v) for k, v in incar.items()},
                      "potcar": entry.parameters.get("potcar_symbols"), "slurm_job_id": job_id,
                      "slurm_state": state},
            relaxation={"converged": bool(entry.data.get("converged_ionic"))},
            scf={"converged": True},
            timings={"total_s": time.perf_counter() - t0},
            log_excerpt=log,
            extra={"computed_entry": entry.as_dict()},
        )


def _plain(value: object) -> object:
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
