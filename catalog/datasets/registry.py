"""The seed datasets, as data: where each file comes from, its checksum, licence, citation, the scheme its energies
belong to and which loader (``catalog.datasets.loaders.LOADERS``) puts it into the catalog."""

from __future__ import annotations

from dataclasses import dataclass, field

from catalog.models import Scheme
from catalog.protocols import GPAW_BOOTSTRAP_SET, MATERIALS_PROJECT_GGA_U
from catalog.services.energies import ensure_scheme
from catalog.services.ingest import ImportSummary

CDVAE = "https://raw.githubusercontent.com/txie-93/cdvae/f857f598/data"
CRABNET = "https://raw.githubusercontent.com/anthony-wang/CrabNet/457b4d48/data/benchmark_data"
AVIARY = "https://raw.githubusercontent.com/CompRhys/aviary/a021eb72/examples/inputs"
MATBENCH_DISCOVERY = "https://raw.githubusercontent.com/janosh/matbench-discovery/b2e98a0d/data/mp"


class DatasetError(RuntimeError):
    """A dataset cannot be loaded; the message says which file and what to do."""


class ChecksumMismatch(DatasetError):
    pass


class DatasetUnavailable(DatasetError):
    pass


@dataclass(frozen=True)
class DatasetFile:
    path: str  # relative to the dataset's folder
    sha256: str
    url: str | None = None  # None: not published anywhere; must be present locally


@dataclass(frozen=True)
class SchemeSpec:
    name: str
    kind: str
    level_of_theory: str = ""
    is_dft: bool = True
    correction_policy: str = ""
    description: str = ""
    display_priority: int = 100
    protocol: dict | None = None  # the settings behind the dataset's energies (catalog.protocols)

    def ensure(self) -> Scheme:
        # adopt_existing: a scheme made before protocols were recorded holds this dataset's own rows
        return ensure_scheme(self.name, self.kind, protocol=self.protocol, adopt_existing=True,
                             level_of_theory=self.level_of_theory, is_dft=self.is_dft,
                             correction_policy=self.correction_policy, description=self.description,
                             display_priority=self.display_priority)

    def defaults(self) -> dict:
        return {"level_of_theory": self.level_of_theory, "is_dft": self.is_dft,
                "correction_policy": self.correction_policy, "description": self.description,
                "display_priority": self.display_priority}


@dataclass(frozen=True)
class Dataset:
    name: str
    folder: str  # relative to DATA_DIR / DATASET_CACHE_DIR
    title: str
    kind: str  # "structures" | "compositions" | "elemental_references"
    count: int  # rows the full dataset yields
    files: tuple[DatasetFile, ...]
    licence: str
    citation: str
    scheme: SchemeSpec
    loader: str  # a key of catalog.datasets.loaders.LOADERS
    notes: str = ""


@dataclass
class DatasetResult:
    dataset: str
    summary: ImportSummary | None = None
    energies: int = 0
    references: int = 0
    extra: dict = field(default_factory=dict)

    def line(self) -> str:
        parts = [self.summary.line()] if self.summary else []
        if self.energies:
            parts.append(f"composition energies {self.energies}")
        if self.references:
            parts.append(f"elemental references {self.references}")
        if self.extra.get("already_present"):
            parts.append(f"already present {self.extra['already_present']}")
        return f"{self.dataset}: " + "; ".join(parts)


PEROV_5 = Dataset(
    name="perov_5",
    folder="cdvae/perov_5",
    title="Perovskites (ABX3, 5 atoms/cell) relaxed with GPAW, Castelli et al. 2012 (CDVAE val+test splits)",
    kind="structures",
    count=7572,
    files=(
        DatasetFile("val.csv", "326f401219901270374b71e2faff63df3a29a99fd26f469993b9f476b693daf2",
                    f"{CDVAE}/perov_5/val.csv"),
        DatasetFile("test.csv", "a85878c685037f0a578257f6d4fcdde00e968dbab73c5f1e90ecef65218513f6",
                    f"{CDVAE}/perov_5/test.csv"),
    ),
    licence="MIT (CDVAE repository); cite the original studies",
    citation="I. E. Castelli et al., Energy Environ. Sci. 5, 9034 (2012) and 5, 5814 (2012); "
             "T. Xie et al., CDVAE, ICLR 2022",
    scheme=SchemeSpec(
        name="dataset:perov5-castelli",
        kind=Scheme.Kind.STABILITY_VALUE,
        level_of_theory="DFT (GPAW, RPBE), Castelli et al. 2012",
        correction_policy="as published",
        description="heat_ref: heat of formation (eV/atom) against the reference phases of the original study, not "
                    "against the elements; the study took <= 0.2 eV/atom as its stability window. heat_all, dir_gap, "
                    "ind_gap (eV) are kept in each record's data. Never builds a hull.",
        display_priority=500,
    ),
    loader="structure_files",
)

CARBON_24 = Dataset(
    name="carbon_24",
    folder="cdvae/carbon_24",
    title="Carbon allotropes from AIRSS at 10 GPa, 6-24 atoms/cell (CDVAE val+test splits)",
    kind="structures",
    count=4062,
    files=(
        DatasetFile("val.csv", "36c00689cd63073c954a58bc6ed6e2adb7aeed5a630c994970959a1babffd50e",
                    f"{CDVAE}/carbon_24/val.csv"),
        DatasetFile("test.csv", "386b17c08816f434818d51e46687bf72ff3f92348f3ba24823e4758f1fe8a969",
                    f"{CDVAE}/carbon_24/test.csv"),
    ),
    licence="MIT (CDVAE repository); cite the original studies",
    citation="C. J. Pickard, AIRSS data for carbon at 10GPa, Materials Cloud (2020), doi:10.24435/MATERIALSCLOUD:2020.0026/V1;"
             " C. J. Pickard and R. J. Needs, PRL 97, 045504 (2006), J. Phys.: Condens. Matter 23, 053201 (2011)",
    scheme=SchemeSpec(
        name="dataset:carbon24-airss",
        kind=Scheme.Kind.TOTAL_ENERGY,
        level_of_theory="DFT (AIRSS, Pickard & Needs) at 10 GPa",
        correction_policy="none",
        description="energy_per_atom: absolute DFT energy (eV/atom) of the original AIRSS runs; only differences within "
                    "the set are meaningful. Elemental reference C = the lowest energy per atom in the set (diamond).",
        display_priority=400,
    ),
    loader="structure_files",
    notes="elemental reference from the set's minimum",
)

AVIARY = Dataset(
    name="aviary_hf_n_ti_zr_zn",
    folder="aviary_hf_n_ti_zr_zn",
    title="68 relaxed crystals of the Hf-N-Ti-Zr-Zn system (TAATA subset shipped with aviary)",
    kind="structures",
    count=68,
    files=(
        DatasetFile("examples.json", "4ce1e41e9fdc2d744fb1714ba177a15f53b65a0efc99c74055ae0b52f7f1bc5c",
                    f"{AVIARY}/examples.json"),
    ),
    licence="MIT (aviary repository)",
    citation="R. E. A. Goodall and A. A. Lee, aviary (github.com/CompRhys/aviary), TAATA high-throughput data",
    scheme=SchemeSpec(
        name="dataset:aviary-taata",
        kind=Scheme.Kind.FORMATION_ENERGY,
        level_of_theory="DFT (VASP, PBE), TAATA high-throughput runs (2016)",
        correction_policy="none",
        description="E_f (eV/atom) from examples.json: the per-atom total energy minus the composition-weighted lowest "
                    "per-atom energy of each element within the 68-entry set (elements at 0). Equivalent to the total "
                    "energies in raw/*.poscar line 1; the formation energies are what the repository publishes.",
        display_priority=300,
    ),
    loader="aviary",
)

GPAW_BOOTSTRAP = Dataset(
    name="gpaw-pbe-bootstrap",
    folder="gpaw-pbe-bootstrap",
    title="Elements and binary prototypes relaxed with GPAW PBE (62 entries)",
    kind="structures",
    count=62,
    files=(DatasetFile("entries.json", "ac8242cbe0e90c6e67f3ea3c574a8b002657dbee4f201dc66606dae66875f626", None),),
    licence="CC0",
    citation="computed for Gnomon with GPAW 26.7.0 (J. J. Mortensen et al., J. Chem. Phys. 160, 092503 (2024))",
    scheme=SchemeSpec(
        name="GPAW-PBE-bootstrap",
        kind=Scheme.Kind.TOTAL_ENERGY,
        level_of_theory="GPAW 26.7.0, PBE, PAW (gpaw-data 0.9.20000), plane waves 520 eV, k-spacing 0.25 1/Å, "
                        "Fermi-Dirac 0.05 eV; cell and positions relaxed to 0.05 eV/Å",
        correction_policy="none (raw PBE)",
        description="Total energies (eV) of the relaxed cells; settings of each calculation in its data. Elemental "
                    "references: the lowest energy per atom of each element's entries in the set.",
        display_priority=200,
        protocol=GPAW_BOOTSTRAP_SET,
    ),
    loader="structure_files",
)

MP_ELEMENTAL_REFS = Dataset(
    name="mp_elemental_refs",
    folder="mp_elemental_refs",
    title="Materials Project lowest-energy entry per element (89), raw GGA, as used by Matbench Discovery",
    kind="elemental_references",
    count=89,
    files=(
        DatasetFile("2023-02-07-mp-elemental-reference-entries.json.gz",
                    "9fd6ef848a91c88840a0d1709b5856d0edb4af22095237e59db52f2acd6bbf79",
                    f"{MATBENCH_DISCOVERY}/2023-02-07-mp-elemental-reference-entries.json.gz"),
    ),
    licence="MIT (matbench-discovery repository); MP data CC BY 4.0",
    citation="A. Jain et al., APL Mater. 1, 011002 (2013); J. Riebesell et al., Matbench Discovery (2023)",
    scheme=SchemeSpec(
        name="MP2020",
        kind=Scheme.Kind.TOTAL_ENERGY,
        level_of_theory="Materials Project GGA/GGA+U (PBE, PAW)",
        correction_policy="MP2020 compatibility (elements carry no correction)",
        description="Materials Project energies with MP2020 corrections; elemental references are MP's lowest-energy "
                    "GGA entry per element (database of 2023-02-07).",
        display_priority=10,
        protocol=MATERIALS_PROJECT_GGA_U,
    ),
    loader="elemental_references",
)

BARTEL_2020 = Dataset(
    name="bartel2020_mp_stability",
    folder="bartel2020_mp_stability",
    title="85,014 Materials Project compositions with formation and decomposition energies (Bartel et al. 2020)",
    kind="compositions",
    count=85014,
    files=tuple(
        DatasetFile(f"{target}/{split}.csv", sha, f"{CRABNET}/CritExam__{target}/{split}.csv")
        for target, split, sha in (
            ("Ef", "train", "717892455f5474fb98d952b2824b09e2abae21d4893eebc5f0e16b5042a9f168"),
            ("Ef", "val", "f641c56947685fad49aaf13c31b098593a708d8aff19cf271b2239251d9d6a3a"),
            ("Ef", "test", "92052ffc5bad988371946b1c98a605addf88fd2894e2319ed1a39653cecb0f43"),
            ("Ed", "train", "b8de276563588969f9b8a9f7fb59059e2b445da22f4bc84beed5d4b8d3b16934"),
            ("Ed", "val", "be508d700c294fffa382887f37dbc1aded4ad2a5f5ab526bad60d987f5a6d7f0"),
            ("Ed", "test", "ebe21e71b66eb534c9f53c4e682c3661ed402204805e7a74bf17d03639a978ab"),
        )
    ),
    licence="MIT (CrabNet repository); MP data CC BY 4.0",
    citation="C. J. Bartel et al., npj Comput. Mater. 6, 97 (2020); A. Y.-T. Wang et al., CrabNet (2021)",
    scheme=SchemeSpec(
        name="MP-bartel2020",
        kind=Scheme.Kind.FORMATION_ENERGY,
        level_of_theory="Materials Project GGA/GGA+U with corrections, database of about 2019-2020",
        correction_policy="as in MP at the time (MP2020-era compatibility)",
        description="Ground-state formation energy (eV/atom, elements at 0) of every non-elemental MP composition, "
                    "composition only. The published decomposition energy against the MP hull is kept in "
                    "data['published_decomposition_energy'] to check the hulls built here.",
        display_priority=50,
        protocol={**MATERIALS_PROJECT_GGA_U, "corrections": "MP compatibility of about 2019 (Bartel et al. 2020)",
                  "values": "formation energies per composition, no structures"},
    ),
    loader="bartel",
)

REGISTRY: dict[str, Dataset] = {
    d.name: d for d in (MP_ELEMENTAL_REFS, BARTEL_2020, GPAW_BOOTSTRAP, AVIARY, CARBON_24, PEROV_5)
}


def get_dataset(name: str) -> Dataset:
    try:
        return REGISTRY[name]
    except KeyError as exc:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}") from exc
