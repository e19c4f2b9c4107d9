"""Pieces shared by the unsupervised and supervised ConstellationNet: config fields, the
plateau stopping rule, tensors of a sampled subgraph, and the per-epoch record."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from .. import MethodConfig
from .sampling import InNeighbours, Subgraph


class TrainingConfig(MethodConfig):
    """Optimisation settings both pipelines share (4.1.4, 4.1.5)."""

    num_layers: int = Field(5, ge=1, description="GNN layers [conv -> BatchNorm -> ReLU -> dropout]")
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    edge_weights: bool = Field(True, description="pass inverse-distance weights to convs that accept them")
    num_neighbors: list[int] = Field([30, 30], min_length=1,
                                     description="neighbours sampled per hop (NeighborLoader's num_neighbors)")
    batch_size: int = Field(64, ge=1, description="seed nodes per mini-batch")
    lr: float = Field(1e-3, gt=0.0)
    plateau_patience: int = Field(5, ge=0, description="ReduceLROnPlateau patience (epochs)")
    plateau_factor: float = Field(0.75, gt=0.0, lt=1.0, description="ReduceLROnPlateau factor")
    inference: Literal["full_graph", "all_neighbours"] = Field(
        "full_graph", description="evaluate every node on the whole graph, or on all-neighbour samples of "
        "the training depth (the paper's test loader)")

    @field_validator("num_neighbors")
    @classmethod
    def _fanouts(cls, value: list[int]) -> list[int]:
        for f in value:
            if f == 0 or f < -1:
                raise ValueError(f"num_neighbors entries must be positive or -1 (all), got {f}")
        return value


@dataclass
class PlateauStop:
    """Stop when the monitored loss has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: int
    min_delta: float
    best: float = math.inf
    best_epoch: int = -1
    wait: int = 0

    def update(self, value: float, epoch: int) -> tuple[bool, bool]:
        """Returns (improved, stop)."""
        improved = value < self.best - self.min_delta
        if improved:
            self.best, self.best_epoch, self.wait = value, epoch, 0
        else:
            self.wait += 1
        return improved, self.wait >= self.patience


def subgraph_tensors(sub: Subgraph, device) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(sub.edge_index).to(device), torch.from_numpy(sub.edge_weight).to(device))


def full_graph_tensors(graph: InNeighbours, device) -> tuple[torch.Tensor, torch.Tensor]:
    edge_index, weight = graph.edge_index()
    return torch.from_numpy(edge_index).to(device), torch.from_numpy(weight.astype(np.float32)).to(device)


def count_parameters(module: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


@dataclass
class EpochTimer:
    seconds: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else 0.0


# --- memory estimates (resources.check_costs, before the model is built) ---------------------------

def gnn_parameter_count(conv: str, in_dim: int, hidden: int, num_layers: int, n_clusters: int) -> int:
    """Weights of the GNN stack and the DMoN head (MLP hidden -> hidden -> k): the conv's linear
    maps (GIN's MLP has two per layer), ignoring biases, norms and attention vectors."""
    first, rest = in_dim * hidden, (num_layers - 1) * hidden * hidden
    if conv == "gin":
        first, rest = first + hidden * hidden, 2 * rest
    return first + rest + hidden * hidden + hidden * n_clusters + 4 * num_layers * hidden


def subgraph_nodes(n: int, k: int, batch_size: int, fanouts: list[int]) -> int:
    """Most nodes a sampled subgraph can hold: the seeds and their sampled in-neighbours per hop
    (-1: all k), never more than the graph."""
    nodes = total = min(batch_size, n)
    for fanout in fanouts:
        nodes *= k if fanout == -1 else min(fanout, k)
        total += nodes
        if total >= n:
            return n
    return total
