"""A campaign's settings: one pydantic model (``CampaignConfig``) that ``launch_campaign --config``, the admin form and
the API serializer all validate with, and build their fields from (bounds, help texts, choices).

Pure module (no Django). ``CampaignConfigError.errors`` maps each bad field to a message a user can act on.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
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


def _setting(default: Any, name: str) -> Any:
    """A bounded, documented setting: its bounds from ``BOUNDS``, its help text from ``HELP``."""
    low, high = BOUNDS.get(name, (None, None))
    return Field(default, ge=low, le=high, description=HELP.get(name))


def _split(value: Any) -> Any:
    """"Li, Mn, O", "Li-Mn-O" or "structural,compositional" from a form or the command line → a list."""
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").replace("-", " ").split() if part]
    return value


def element_space(value: Any) -> list[str]:
    """The campaign's elements, sorted and distinct, from a list or a "Li, Mn, O" string; a ValueError says why not."""
    value = _split(value)
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("the element space is empty; list at least two elements, e.g. Li, Mn, O")
    unknown = [e for e in value if not (isinstance(e, str) and Element.is_valid_symbol(e.strip()))]
    if unknown:
        raise ValueError(f"not chemical elements: {', '.join(map(str, unknown))}")
    elements = sorted({e.strip() for e in value})
    if len(elements) < 2:
        raise ValueError("a discovery campaign needs at least two distinct elements")
    if missing := sorted(set(elements) - reference_elements()):
        raise ValueError(
            f"no elemental reference phase for {', '.join(missing)}: formation energies and hulls need one; "
            "leave it out, or add its ground-state structure to discovery/dft/references.py"
        )
    return elements


class CampaignConfig(BaseModel):
    """Budget, screening and DFT settings of one campaign (energies in eV/atom): the one definition that
    ``launch_campaign --config``, the admin form and the API serializer all validate with."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the campaign's name, unique")
    elements: list[str] = Field(description="the element space, e.g. Li, Mn, O")
    max_elements: int = _setting(3, "max_elements")
    pipelines: list[str] = Field(default_factory=lambda: ["structural"], description="structural and/or compositional")
    rounds: int = _setting(3, "rounds")
    candidates_per_round: int = _setting(200, "candidates_per_round")
    dft_per_round: int = _setting(4, "dft_per_round")
    wall_clock_hours: float = _setting(24.0, "wall_clock_hours")
    ensemble_size: int = _setting(3, "ensemble_size")
    epochs: int = _setting(20, "epochs")
    kappa: float = _setting(1.0, "kappa")
    # κ of the last round; κ moves linearly from ``kappa`` (round 0) to it: explore while the model knows little,
    # exploit once it has learnt from the campaign's own DFT. None: κ stays ``kappa`` throughout.
    kappa_final: float | None = _setting(None, "kappa_final")
    max_predicted_e_above_hull: float = _setting(0.1, "max_predicted_e_above_hull")
    # After each round: "fine-tune" the previous round's members on all verified energies so far (falls back to
    # scratch when they cannot be fine-tuned, e.g. after a change of target), or train new ones from "scratch".
    retraining: str = Field("fine-tune", description=HELP["retraining"])
    cap_per_chemsys: int = _setting(2, "cap_per_chemsys")
    cap_per_formula: int = _setting(0, "cap_per_formula")  # most picks per reduced formula per round; 0: no limit
    max_atoms: int = _setting(8, "max_atoms")
    max_concurrent_dft: int = _setting(0, "max_concurrent_dft")  # queued or running at once; 0: no limit
    # Competing-phase jobs (catalog crystals and searched structures) the campaign may queue in all, on top of its
    # rounds × dft_per_round candidates; verdicts that need more stay provisional.
    max_competitor_jobs: int = _setting(20, "max_competitor_jobs")
    dft_backend: str = Field("gpaw", description=HELP["dft_backend"])
    dft_preset: str = Field("fast", description=HELP["dft_preset"])
    seed: int = Field(0, description=HELP["seed"])

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        name = str(value if value is not None else "").strip()
        if not name:
            raise ValueError("a campaign needs a name")
        if len(name) > 120:
            raise ValueError("at most 120 characters")
        return name

    @field_validator("elements", mode="before")
    @classmethod
    def _elements(cls, value: Any) -> list[str]:
        return element_space(value)

    @field_validator("pipelines", mode="before")
    @classmethod
    def _pipelines(cls, value: Any) -> list[str]:
        value = _split(value) if isinstance(value, str) else value
        value = list(value) if isinstance(value, list | tuple) else []
        bad = [p for p in value if p not in PIPELINES]
        if not value or bad:
            raise ValueError(f"choose one or both of {', '.join(PIPELINES)}" + (f" (got {', '.join(map(str, bad))})"
                                                                              if bad else ""))
        return list(dict.fromkeys(value))

    @field_validator("dft_preset", "retraining")
    @classmethod
    def _choice(cls, value: str, info: ValidationInfo) -> str:
        if value not in CHOICES[info.field_name]:
            raise ValueError(f"'{value}' is not one of {', '.join(CHOICES[info.field_name])}")
        return value

    @field_validator("dft_backend")
    @classmethod
    def _backend(cls, value: str, info: ValidationInfo) -> str:
        backends = sorted((info.context or {}).get("backends", DFT_BACKENDS))
        if value not in backends:
            raise ValueError(f"'{value}' is not one of {', '.join(backends)}")
        return value

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def settings(cls) -> list[tuple[str, type, Any]]:
        """(name, type, default) of every setting besides the name and the element space, in declaration order:
        what the admin form and the API schema are built from, so neither can drift from this class."""
        out = []
        for name, info in cls.model_fields.items():
            if name in ("name", "elements", "pipelines"):
                continue
            kind = str if info.annotation is str else float if float in (info.annotation, *get_args(info.annotation)) \
                else int
            out.append((name, kind, info.default))
        return out

    def kappa_for_round(self, round_index: int) -> float:
        from discovery.screening.acquisition import annealed_kappa

        return annealed_kappa(self.kappa, self.kappa_final, round_index, self.rounds)


def _message(error: dict) -> str:
    """A pydantic error as a message a user can act on, quoting the value and, for a bound, the range."""
    field, value, kind = str(error["loc"][0]) if error["loc"] else "config", error.get("input"), error["type"]
    if kind == "extra_forbidden":
        return f"unknown setting; known settings: {', '.join(sorted(CampaignConfig.model_fields))}"
    if kind in ("greater_than_equal", "less_than_equal"):
        low, high = BOUNDS[field]
        return f"{value} is out of range [{low}, {high}]"
    if kind.startswith("int_"):
        return f"'{value}' is not an integer"
    if kind.startswith("float_"):
        return f"'{value}' is not a number"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    return error["msg"]


def validate(raw: dict[str, Any], backends: Iterable[str] = DFT_BACKENDS) -> CampaignConfig:
    """Check every field and return a normalised config, or raise ``CampaignConfigError`` listing all problems.

    ``backends``: the DFT backend names this deployment knows (plugins add to the built-in ones).
    """
    values = dict(raw)
    if values.get("kappa_final", 0) is None:  # explicit "no schedule" (JSON null, an empty admin field)
        del values["kappa_final"]
    elements = values.get("elements")
    if "max_elements" not in values:  # by default as many elements as the space has, up to the class default
        try:
            n = len(element_space(elements))
            values["max_elements"] = min(CampaignConfig.model_fields["max_elements"].default, n)
        except (ValueError, TypeError):
            pass
    try:
        config = CampaignConfig.model_validate(values, context={"backends": list(backends)})
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "config"
            errors.setdefault(field, _message(error))
        raise CampaignConfigError(errors) from exc
    errors = {}
    if config.max_elements > len(config.elements):
        errors["max_elements"] = f"{config.max_elements} is more than the {len(config.elements)} elements allowed"
    if config.dft_backend == "gpaw" and (plus_u := needs_plus_u(config.elements)):
        errors["elements"] = (
            f"the Materials Project treats oxides and fluorides of {', '.join(plus_u)} with GGA+U, and Gnomon's GPAW "
            "protocol has no +U: their energies would not be comparable. Use dft_backend = \"vasp\" (MP's GGA+U "
            "input sets), or leave out O and F"
        )
    if errors:
        raise CampaignConfigError(errors)
    return config


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
