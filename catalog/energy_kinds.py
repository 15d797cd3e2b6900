"""What a scheme's energies mean: the one definition, shared by the pure hull code and the ``Scheme`` model."""

TOTAL_ENERGY = "total_energy"  # eV per cell; formation energies come from elemental references
FORMATION_ENERGY = "formation_energy"  # eV/atom, elements at 0
STABILITY_VALUE = "stability_value"  # a dataset's own stability measure; never builds a hull
HULL_KINDS = (TOTAL_ENERGY, FORMATION_ENERGY)
