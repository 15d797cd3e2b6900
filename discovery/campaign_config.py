"""A campaign's settings, validated in one place for the admin form, the API and ``launch_campaign --config``.

Pure module (no Django). ``CampaignConfigError.errors`` maps each bad field to a message a user can act on.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pymatgen.core import Element

from discovery.dft.presets import needs_plus_u
from discovery.dft.references import reference_elements

PIPELINES = ("structural", "compositional")
DFT_BACKENDS = ("gpaw", "vasp", "ml")
DFT_PRESETS = ("fast", "standard", "bootstrap")
RETRAINING = ("fine-tune", "scratch")

# (low, high) inclusive bounds of every numeric budget; out-of-range values get a message quoting them.
BOUNDS: dict[str, tuple[float, float]] = {
    "max_elements": (1, 6),
    "rounds": (1, 50),
    "candidates_per_round": (1, 100_000),
    "dft_per_round": (1, 1_000),
    "wall_clock_hours": (0.01, 720),
    "ensemble_size": (1, 10),
    "epochs": (1, 500),
    "kappa": (0.0, 5.0),
    "kappa_final": (0.0, 5.0),
    "max_predicted_e_above_hull": (-1.0, 2.0),
    "cap_per_chemsys": (1, 1_000),
    "cap_per_formula": (0, 1_000),
    "max_atoms": (1, 64),
    "max_concurrent_dft": (0, 1_000),
    "max_competitor_jobs": (0, 1_000),
}


# Settings with a fixed set of values (``dft_backend``'s come from the deployment: built-ins plus plugins).
CHOICES: dict[str, tuple[str, ...]] = {"pipelines": PIPELINES, "dft_preset": DFT_PRESETS, "retraining": RETRAINING}
# What each setting means, for the forms and the API schema built from ``CampaignConfig`` (units in the text).
HELP: dict[str, str] = {
    "max_elements": "most elements in one candidate",
    "rounds": "generate → screen → verify → fold → retrain cycles",
    "candidates_per_round": "candidates kept after deduplication, per round",
    "dft_per_round": "candidates verified with DFT per round",
    "wall_clock_hours": "the campaign stops after this many hours",
    "ensemble_size": "networks in the screening ensemble (their spread is the uncertainty)",
    "epochs": "training epochs per network",
    "kappa": "acquisition: mean − κ·std ≤ threshold",
    "kappa_final": "κ of the last round (linear from κ); empty: κ stays the same every round",
    "max_predicted_e_above_hull": "acquisition threshold, eV/atom",
    "retraining": "fine-tune: continue the previous round's ensemble; scratch: train a new one",
    "cap_per_chemsys": "most DFT picks per chemical system per round",
    "cap_per_formula": "most DFT picks per reduced formula per round (spreads picks over compositions); 0: no limit",
    "max_atoms": "largest candidate cell, atoms",
    "max_concurrent_dft": "DFT jobs of this campaign queued or running at once; 0: no limit",
    "max_competitor_jobs": "competing-phase jobs (known crystals, searched structures) the campaign may queue in all",
    "dft_backend": "level of theory of the verification",
    "dft_preset": "DFT protocol (discovery/dft/presets.py)",
    "seed": "random seed of generation and training",
}


class CampaignConfigError(ValueError):
    """Invalid campaign settings; ``errors`` maps field name → message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class CampaignConfig:
    """Budget, screening and DFT settings of one campaign (energies in eV/atom)."""

    name: str
    elements: list[str]
    max_elements: int = 3
    pipelines: list[str] = field(default_factory=lambda: ["structural"])
    rounds: int = 3
    candidates_per_round: int = 200
    dft_per_round: int = 4
    wall_clock_hours: float = 24.0
    ensemble_size: int = 3
    epochs: int = 20
    kappa: float = 1.0
    # κ of the last round; κ moves linearly from ``kappa`` (round 0) to it: explore while the model knows little,
    # exploit once it has learnt from the campaign's own DFT. None: κ stays ``kappa`` throughout.
    kappa_final: float | None = None
    max_predicted_e_above_hull: float = 0.1
    # After each round: "fine-tune" the previous round's members on all verified energies so far (falls back to
    # scratch when they cannot be fine-tuned, e.g. after a change of target), or train new ones from "scratch".
    retraining: str = "fine-tune"
    cap_per_chemsys: int = 2
    cap_per_formula: int = 0  # most picks per reduced formula per round; 0: no limit
    max_atoms: int = 8
    max_concurrent_dft: int = 0  # DFT jobs of this campaign queued or running at once; 0: no limit
    # Competing-phase jobs (catalog crystals and searched structures) the campaign may queue in all, on top of its
    # rounds × dft_per_round candidates; verdicts that need more stay provisional.
    max_competitor_jobs: int = 20
    dft_backend: str = "gpaw"
    dft_preset: str = "fast"
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def settings(cls) -> list[tuple[str, type, Any]]:
        """(name, type, default) of every setting besides the name and the element space, in declaration order:
        what the admin form and the API schema are built from, so neither can drift from this class."""
        out = []
        for f in fields(cls):
            if f.name in ("name", "elements", "pipelines"):
                continue
            default = None if f.default is MISSING else f.default
            kind = (str if f.name in CHOICES or f.name == "dft_backend"
                    else float if isinstance(BOUNDS.get(f.name, (0, 0))[0], float) or isinstance(default, float)
                    else int)
            out.append((f.name, kind, default))
        return out

    def kappa_for_round(self, round_index: int) -> float:
        from discovery.screening.acquisition import annealed_kappa

        return annealed_kappa(self.kappa, self.kappa_final, round_index, self.rounds)


def validate(raw: dict[str, Any], backends: Iterable[str] = DFT_BACKENDS) -> CampaignConfig:
    """Check every field and return a normalised config, or raise ``CampaignConfigError`` listing all problems.

    ``backends``: the DFT backend names this deployment knows (plugins add to the built-in ones).
    """
    known = {f.name for f in fields(CampaignConfig)}
    errors: dict[str, str] = {}
    for key in raw:
        if key not in known:
            errors[key] = f"unknown setting; known settings: {', '.join(sorted(known))}"
    values = {k: v for k, v in raw.items() if k in known}

    name = str(values.get("name", "")).strip()
    if not name:
        errors["name"] = "a campaign needs a name"
    elif len(name) > 120:
        errors["name"] = "at most 120 characters"
    values["name"] = name

    elements_raw = values.get("elements", [])
    if isinstance(elements_raw, str):
        elements_raw = [e for e in elements_raw.replace(",", " ").replace("-", " ").split() if e]
    if not isinstance(elements_raw, list | tuple) or not elements_raw:
        errors["elements"] = "the element space is empty; list at least two elements, e.g. Li, Mn, O"
    else:
        unknown = [e for e in elements_raw if not (isinstance(e, str) and Element.is_valid_symbol(e.strip()))]
        if unknown:
            errors["elements"] = f"not chemical elements: {', '.join(map(str, unknown))}"
        elif len(set(elements_raw)) < 2:
            errors["elements"] = "a discovery campaign needs at least two distinct elements"
        elif missing := sorted({e.strip() for e in elements_raw} - reference_elements()):
            errors["elements"] = (
                f"no elemental reference phase for {', '.join(missing)}: formation energies and hulls need one; "
                "leave it out, or add its ground-state structure to discovery/dft/references.py"
            )
        values["elements"] = sorted({e.strip() for e in elements_raw if isinstance(e, str)})

    pipelines = values.get("pipelines", ["structural"])
    if isinstance(pipelines, str):
        pipelines = [p.strip() for p in pipelines.split(",") if p.strip()]
    bad = [p for p in pipelines if p not in PIPELINES]
    if not pipelines or bad:
        errors["pipelines"] = f"choose one or both of {', '.join(PIPELINES)}" + (f" (got {', '.join(bad)})" if bad else "")
    values["pipelines"] = list(dict.fromkeys(pipelines))

    if values.get("kappa_final", 0) is None:  # explicit "no schedule" (JSON null, an empty admin field)
        del values["kappa_final"]
    for key, (low, high) in BOUNDS.items():
        if key not in values:
            continue
        value = values[key]
        kind = float if isinstance(low, float) or isinstance(high, float) else int
        try:
            number = kind(value)
            if kind is int and float(value) != number:
                raise ValueError
        except (TypeError, ValueError):
            errors[key] = f"'{value}' is not a{'n integer' if kind is int else ' number'}"
            continue
        if not (low <= number <= high):
            errors[key] = f"{number} is out of range [{low}, {high}]"
        values[key] = number

    if "elements" not in errors and "max_elements" not in errors:
        max_elements = values.setdefault("max_elements", min(CampaignConfig.max_elements, len(values["elements"])))
        if max_elements > len(values["elements"]):
            errors["max_elements"] = f"{max_elements} is more than the {len(values['elements'])} elements allowed"
    if values.get("dft_backend", "gpaw") == "gpaw" and "elements" not in errors:
        plus_u = needs_plus_u(values.get("elements", []))
        if plus_u:
            errors["elements"] = (
                f"the Materials Project treats oxides and fluorides of {', '.join(plus_u)} with GGA+U, and Gnomon's GPAW "
                "protocol has no +U: their energies would not be comparable. Use dft_backend = \"vasp\" (MP's GGA+U "
                "input sets), or leave out O and F"
            )
    backends = sorted(backends)
    if values.get("dft_backend", "gpaw") not in backends:
        errors["dft_backend"] = f"'{values['dft_backend']}' is not one of {', '.join(backends)}"
    if values.get("dft_preset", "fast") not in DFT_PRESETS:
        errors["dft_preset"] = f"'{values['dft_preset']}' is not one of {', '.join(DFT_PRESETS)}"
    if values.get("retraining", "fine-tune") not in RETRAINING:
        errors["retraining"] = f"'{values['retraining']}' is not one of {', '.join(RETRAINING)}"
    if "seed" in values:
        try:
            values["seed"] = int(values["seed"])
        except (TypeError, ValueError):
            errors["seed"] = f"'{values['seed']}' is not an integer"
    if errors:
        raise CampaignConfigError(errors)
    return CampaignConfig(**values)


def load_toml(path: Path, backends: Iterable[str] = DFT_BACKENDS) -> CampaignConfig:
    """Read a ``launch_campaign --config FILE.toml``; a syntax error names the file and line."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise CampaignConfigError({"config": f"file not found: {path}"}) from exc
    except tomllib.TOMLDecodeError as exc:
        raise CampaignConfigError({"config": f"{path}: {exc}"}) from exc
    return validate(raw.get("campaign", raw), backends)


# Presets small enough for a laptop. `demo` runs real GPAW (`fast` protocol) on 2 cores in Na–Mg–Cl: the seed catalog
# has no Mg–Cl crystal (the GPAW bootstrap set has MgF2, CaCl2 and an unstable Mg2Cl; MP's table lists MgCl2 as a
# composition only), so the campaign has something to find: F → Cl in MgF2 gives fluorite-type MgCl2. Its verdict is
# provisional: MP's MgCl2 (the CdCl2 type) has no structure in the catalog to compute against. Measured runs:
# benchmarks/results/campaign_preset_demo.json and the README.
PRESETS: dict[str, dict[str, Any]] = {
    "demo": {
        "name": "demo",
        "elements": ["Na", "Mg", "Cl"],
        "max_elements": 3,
        "pipelines": ["structural"],
        "rounds": 2,
        "candidates_per_round": 60,
        "dft_per_round": 2,
        "ensemble_size": 2,
        "epochs": 5,
        "kappa": 1.0,
        "kappa_final": 0.0,
        "max_atoms": 4,
        "dft_backend": "gpaw",
        "dft_preset": "fast",
    },
    "smoke": {
        "name": "smoke",
        "elements": ["Na", "K", "Cl"],
        "max_elements": 3,
        "pipelines": ["structural"],
        "rounds": 1,
        "candidates_per_round": 20,
        "dft_per_round": 1,
        "ensemble_size": 2,
        "epochs": 2,
        "max_atoms": 4,
        "max_predicted_e_above_hull": 1.0,  # a smoke test must verify something, however unpromising
        "dft_backend": "ml",
        "dft_preset": "fast",
    },
}
