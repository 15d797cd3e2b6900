"""A small matgl property model (M3GNet or TensorNet, built from scratch) with its target normalisation.

Gnomon trains its own models: matgl's pretrained weights come from a hub unreachable here, and the snapshot in
``../shared/models`` gave unphysical energies under matgl 4.1.2 / torch 2.13. A ``PropertyModel`` predicts one
intensive target per structure (eV/atom) as ``mean + std * network(graph)``, where ``mean``/``std`` are those of the
training targets; a checkpoint holds the configuration, the normalisation and the weights, and loads with
``torch.load(weights_only=True)`` (no pickled code).
"""

from __future__ import annotations

import pickle  # noqa: S403  only for the exception class torch.load raises
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from matgl.models import M3GNet, TensorNet
from pymatgen.core import Structure
from torch import nn

from discovery.magpie import element_embedding
from discovery.screening.graphs import ELEMENT_TYPES, GraphBatch, GraphFeaturizer, collate

Architecture = Literal["M3GNet", "TensorNet"]
ElementEmbedding = Literal["magpie", "random"]
ELEMENT_EMBEDDINGS: tuple[str, ...] = get_args(ElementEmbedding)
CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A weight file is not a Gnomon screening checkpoint, or was written by an incompatible version."""


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of one network. Defaults are small: this is a screening filter trained on a CPU."""

    architecture: Architecture = "M3GNet"
    units: int = 32  # width of node/edge embeddings and hidden layers
    nblocks: int = 2  # message-passing blocks
    cutoff: float = 5.0  # Å, graph edges
    threebody_cutoff: float = 4.0  # Å, M3GNet angles
    max_n: int = 3
    max_l: int = 3
    readout: Literal["weighted_atom", "reduce_atom"] = "weighted_atom"
    # Initial element embeddings: "magpie" starts them from the elements' Magpie properties (see
    # ``discovery.magpie.element_embedding``), "random" from matgl's random initialisation.
    element_embedding: ElementEmbedding = "magpie"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise CheckpointError(f"unknown model settings {sorted(unknown)}; known: {sorted(known)}")
        # Checkpoints written before the setting existed started from random embeddings.
        return cls(**{"element_embedding": "random", **data})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def uses_line_graph(self) -> bool:
        return self.architecture == "M3GNet"


def build_network(config: ModelConfig) -> nn.Module:
    """An untrained matgl network for one intensive scalar target, its element embeddings set as configured."""
    if config.element_embedding not in ELEMENT_EMBEDDINGS:
        raise ValueError(f"unknown element embedding {config.element_embedding!r}: use one of {ELEMENT_EMBEDDINGS}")
    network = _matgl_network(config)
    if config.element_embedding == "magpie":
        # The leading columns start from the elements' Magpie properties, shared by every member of an ensemble; the
        # columns beyond the table's rank keep each member's own random draw, so members still disagree most about
        # elements they never trained on.
        weight = element_embedding_layer(network).weight
        magpie = torch.as_tensor(element_embedding(ELEMENT_TYPES, weight.shape[1]), dtype=weight.dtype)
        with torch.no_grad():
            weight[:, : magpie.shape[1]] = magpie
    return network


def element_embedding_layer(network: nn.Module) -> nn.Embedding:
    """The per-element embedding table of a matgl M3GNet or TensorNet."""
    if isinstance(network, M3GNet):
        return network.embedding.layer_node_embedding
    if isinstance(network, TensorNet):
        return network.tensor_embedding.emb
    raise TypeError(f"no known element embedding in {type(network).__name__}")


def _matgl_network(config: ModelConfig) -> nn.Module:
    if config.architecture == "M3GNet":
        return M3GNet(
            element_types=ELEMENT_TYPES,
            dim_node_embedding=config.units,
            dim_edge_embedding=config.units,
            units=config.units,
            nblocks=config.nblocks,
            max_n=config.max_n,
            max_l=config.max_l,
            cutoff=config.cutoff,
            threebody_cutoff=config.threebody_cutoff,
            is_intensive=True,
            readout_type=config.readout,
            ntargets=1,
        )
    if config.architecture == "TensorNet":
        return TensorNet(
            element_types=ELEMENT_TYPES,
            units=config.units,
            nblocks=config.nblocks,
            num_rbf=16,
            max_n=config.max_n,
            max_l=config.max_l,
            cutoff=config.cutoff,
            is_intensive=True,
            readout_type=config.readout,
            ntargets=1,
        )
    raise ValueError(f"unknown architecture {config.architecture!r}: use 'M3GNet' or 'TensorNet'")


class PropertyModel(nn.Module):
    """matgl network + target normalisation: ``forward`` returns predictions in target units (eV/atom)."""

    def __init__(self, config: ModelConfig, target_mean: float = 0.0, target_std: float = 1.0):
        super().__init__()
        self.config = config
        self.network = build_network(config)
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        if self.config.uses_line_graph:
            raw = self.network(batch.graph, l_g=batch.line_graph)
        else:
            raw = self.network(batch.graph)
        return raw.reshape(batch.num_graphs) * self.target_std + self.target_mean

    def featurizer(self) -> GraphFeaturizer:
        return GraphFeaturizer(cutoff=self.config.cutoff)

    def collate(self, graphs) -> GraphBatch:
        return collate(graphs, self.config.threebody_cutoff if self.config.uses_line_graph else None)

    @torch.inference_mode()
    def predict_structure(self, structure: Structure) -> float:
        """One structure through matgl's own ``predict_structure`` (graph built on the spot): the slow baseline."""
        self.eval()
        raw = self.network.predict_structure(structure)
        return float(raw.reshape(()) * self.target_std + self.target_mean)

    def checkpoint(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.as_dict(),
            "state_dict": {key: value.detach().cpu() for key, value in self.state_dict().items()},
        }

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.checkpoint(), path)
        return path

    @classmethod
    def load(cls, path: Path, map_location: str | torch.device = "cpu") -> PropertyModel:
        try:
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:  # torch raises all four on bad bytes
            raise CheckpointError(f"{path}: not a readable screening checkpoint ({exc})") from exc
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: not a Gnomon screening checkpoint of format {CHECKPOINT_FORMAT}")
        try:
            model = cls(ModelConfig.from_dict(checkpoint["config"]))
            model.load_state_dict(checkpoint["state_dict"])
        except (KeyError, TypeError, RuntimeError) as exc:  # a field missing, or weights of another shape
            raise CheckpointError(f"{path}: damaged screening checkpoint ({exc})") from exc
        model.eval()
        return model
