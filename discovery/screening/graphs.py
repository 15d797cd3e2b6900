"""Crystal graphs for the screening models, built once per structure and batched for training and inference.

matgl's ``Structure2Graph`` gives each crystal a periodic neighbour graph (edges within ``cutoff`` Å, with the image
offsets). ``collate`` joins many graphs into one disconnected batch graph and sets Cartesian positions and image shifts
per graph, which is what matgl's property-model training module does; the three-body line graph of M3GNet is built
once per batch here and shared by every ensemble member.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from matgl.config import DEFAULT_ELEMENTS
from matgl.ext.pymatgen import Structure2Graph
from matgl.graph._compute import compute_pair_vector_and_distance, create_line_graph_torch
from pymatgen.core import Structure
from torch_geometric.data import Batch, Data

ELEMENT_TYPES: tuple[str, ...] = tuple(DEFAULT_ELEMENTS)
"""Every model embeds the same 89 elements, so a candidate with an element unseen in training still gets a graph (its
untrained embedding is exactly the kind of out-of-distribution input the ensemble spread should flag)."""


class UnsupportedStructureError(ValueError):
    """A structure cannot be turned into a graph (unknown element, or an atom with no neighbour within the cutoff)."""


@dataclass
class GraphBatch:
    """A batch of crystal graphs ready for a forward pass."""

    graph: Batch
    num_graphs: int
    line_graph: dict[str, torch.Tensor] | None = None

    def to(self, device: torch.device | str) -> GraphBatch:
        line_graph = None
        if self.line_graph is not None:
            line_graph = {key: value.to(device) for key, value in self.line_graph.items()}
        return GraphBatch(graph=self.graph.to(device), num_graphs=self.num_graphs, line_graph=line_graph)


class GraphFeaturizer:
    """Turn pymatgen structures into graphs with a fixed element list and cutoff (Å)."""

    def __init__(self, cutoff: float = 5.0, element_types: Sequence[str] = ELEMENT_TYPES):
        self.cutoff = float(cutoff)
        self.element_types = tuple(element_types)
        self._known = frozenset(self.element_types)
        self._converter = Structure2Graph(element_types=self.element_types, cutoff=self.cutoff)

    def graph(self, structure: Structure) -> Data:
        unknown = {el.symbol for el in structure.composition.elements} - self._known
        if unknown:
            raise UnsupportedStructureError(
                f"{structure.composition.reduced_formula}: element(s) {sorted(unknown)} are not in the model's element list"
            )
        data, lattice, _ = self._converter.get_graph(structure)
        isolated = len(structure) - int(torch.unique(data.edge_index[0]).numel())
        if isolated:
            raise UnsupportedStructureError(
                f"{structure.composition.reduced_formula}: {isolated} atom(s) have no neighbour within {self.cutoff} Å"
            )
        data.lattice = lattice.reshape(1, 3, 3).to(torch.float32)
        return data

    def graphs(self, structures: Sequence[Structure]) -> list[Data]:
        return [self.graph(structure) for structure in structures]


def collate(graphs: Sequence[Data], threebody_cutoff: float | None = None) -> GraphBatch:
    """Join graphs into one batch; with ``threebody_cutoff`` also build M3GNet's line graph for the whole batch."""
    batch = Batch.from_data_list(list(graphs))
    lattice = batch.lattice  # (B, 3, 3), one row block per graph
    node_graph = batch.batch
    batch.pos = (batch.frac_coords.unsqueeze(-1) * lattice[node_graph]).sum(dim=1)
    batch.pbc_offshift = (batch.pbc_offset.unsqueeze(-1) * lattice[node_graph[batch.edge_index[0]]]).sum(dim=1)
    line_graph = None
    if threebody_cutoff is not None:
        bond_vec, bond_dist = compute_pair_vector_and_distance(batch.pos, batch.edge_index, batch.pbc_offshift)
        line_graph = create_line_graph_torch(
            batch.edge_index, bond_dist, bond_vec, int(batch.num_nodes), float(threebody_cutoff)
        )
    return GraphBatch(graph=batch, num_graphs=len(graphs), line_graph=line_graph)
