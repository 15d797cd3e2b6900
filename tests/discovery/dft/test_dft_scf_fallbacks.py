"""The GPAW backend's SCF fallbacks and its physics-failure path, with a cheap stand-in calculator (ASE's EMT)."""

from __future__ import annotations

import pytest
from ase.calculators.emt import EMT
from pymatgen.core import Lattice, Structure

from discovery.dft import PhysicsError, SCFNotConverged, get_preset

pytest.importorskip("gpaw", reason="GPAW is not installed: run scripts/install_gpaw.sh")


class KohnShamConvergenceError(Exception):  # named like GPAW's
    pass


class FlakyEMT(EMT):
    """EMT whose first ``failures`` energy evaluations raise an SCF convergence error."""

    def __init__(self, failures: int, log: list):
        super().__init__()
        self.failures = failures
        self.log = log

    def calculate(self, *args, **kwargs):
        if len(self.log) < self.failures:
            self.log.append("fail")
            raise KohnShamConvergenceError("Did not converge!")
        super().calculate(*args, **kwargs)


@pytest.fixture
def backend():
    from discovery.dft.gpaw_backend import GPAWBackend

    return GPAWBackend()


def _copper() -> Structure:
    return Structure(Lattice([[0, 1.85, 1.85], [1.85, 0, 1.85], [1.85, 1.85, 0]]), ["Cu"], [[0, 0, 0]])


def test_a_failed_scf_is_retried_with_the_next_fallback(backend, tmp_path, monkeypatch):
    failures: list = []
    used: list = []

    def calculator(settings, txt, fallback):
        used.append(fallback)
        return FlakyEMT(1, failures)

    monkeypatch.setattr(backend, "_calculator", calculator)
    result = backend.run(_copper(), get_preset("fast"), workdir=tmp_path)
    assert result.scf["relaxation"]["fallback"] == 1  # the default failed, the first fallback converged
    assert result.scf["relaxation"]["fallback_settings"]["mixer"]["beta"] == 0.05
    assert "KohnShamConvergenceError" in result.scf["relaxation"]["errors"][0]
    assert result.scf["final"]["fallback"] == 0
    assert used[0] is None and used[1] is not None


def test_scf_that_never_converges_is_a_physics_failure(backend, tmp_path, monkeypatch):
    monkeypatch.setattr(backend, "_calculator", lambda settings, txt, fallback: FlakyEMT(10**6, []))
    with pytest.raises(SCFNotConverged, match="after 2 fallbacks") as info:
        backend.run(_copper(), get_preset("fast"), workdir=tmp_path)
    assert isinstance(info.value, PhysicsError) and not info.value.retryable
