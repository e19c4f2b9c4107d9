"""Graphs as ConstellationNet uses them, and the 2-hop neighbour sampler of its mini-batches.

Every node ``t`` receives messages from a fixed-size list of in-neighbours: its K nearest
neighbours in the kNN graph (3.1.1), or, in the supervised setting, its K nearest *training*
points. That makes the whole graph two dense ``(N, K)`` arrays (``sources``, ``weights``) and
lets the sampler work with vectorised numpy instead of a CSR walk.

Why our own sampler: the paper draws mini-batches with PyTorch Geometric's ``NeighborLoader``
(30 neighbours over 2 hops, batch 64). In torch_geometric 2.8 that loader needs the compiled
``pyg-lib`` or ``torch-sparse`` packages, which are not installable here (and have no pure-Python
fallback). ``sample_subgraph`` reproduces the loader's semantics exactly as documented:
seeds first, then the nodes each hop discovers in order of first appearance; per hop, each node
discovered in the previous hop draws ``fanout`` of its in-edges uniformly without replacement
(all of them when ``fanout`` is -1 or at least K); nodes already in the subgraph are not expanded
again; the subgraph keeps only the sampled edges, directed towards the seeds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ...graphs import KnnGraph, inverse_distance


@dataclass
class InNeighbours:
    """Message sources of every node: node ``t`` receives from ``sources[t, j]`` with weight
    ``weights[t, j]``. A row of -1 sources (padding) is never produced by ConstellationNet."""

    sources: np.ndarray  # (N, K) int64
    weights: np.ndarray  # (N, K) float32

    @property
    def n(self) -> int:
        return self.sources.shape[0]

    @property
    def k(self) -> int:
        return self.sources.shape[1]

    @classmethod
    def from_knn(cls, graph: KnnGraph) -> "InNeighbours":
        """A node listens to its own K nearest neighbours, weighted by inverse distance (3.1.1)."""
        return cls(graph.indices.astype(np.int64),
                   inverse_distance(graph.distances).astype(np.float32))

    def edge_index(self) -> tuple[np.ndarray, np.ndarray]:
        """PyG ``edge_index`` (2, N*K), row 0 = source, row 1 = target, and the edge weights."""
        target = np.repeat(np.arange(self.n, dtype=np.int64), self.k)
        return np.stack([self.sources.ravel(), target]), self.weights.ravel()


def inductive_graph(x_fit: np.ndarray, x_query: np.ndarray, k: int) -> InNeighbours:
    """The supervised graph: fit points listen to their K nearest fit points, query points
    (validation, test) to their K nearest fit points. Rows: fit points first, then queries.

    No edge ever starts at a query point, so a query's prediction can use only training data
    and can never influence another prediction (no test->test or test->train messages).
    """
    from ...graphs import knn

    fit = knn(x_fit, k)
    n_fit = len(x_fit)
    if len(x_query):
        query = knn(x_fit, k, queries=x_query)
        indices = np.concatenate([fit.indices, query.indices])
        distances = np.concatenate([fit.distances, query.distances])
    else:
        indices, distances = fit.indices, fit.distances
    graph = InNeighbours.from_knn(KnnGraph(indices, distances))
    assert graph.sources.max() < n_fit, "a message source outside the fit points"
    return graph


@dataclass
class Subgraph:
    """One mini-batch: ``nodes`` (global ids, the ``batch_size`` seeds first) and the sampled
    edges in local ids, directed towards the seeds."""

    nodes: np.ndarray  # (n,) int64 global node ids
    edge_index: np.ndarray  # (2, E) int64 local ids, row 0 source, row 1 target
    edge_weight: np.ndarray  # (E,) float32
    batch_size: int  # the first batch_size nodes are the seeds

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)


def sample_subgraph(graph: InNeighbours, seeds: np.ndarray, fanouts: Sequence[int],
                    rng: np.random.Generator) -> Subgraph:
    """NeighborLoader's directional multi-hop sample around ``seeds`` (see the module docstring)."""
    seeds = np.asarray(seeds, dtype=np.int64)
    if len(np.unique(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct")
    local = np.full(graph.n, -1, dtype=np.int64)  # global id -> local id, -1 = not yet in
    local[seeds] = np.arange(len(seeds))
    nodes = [seeds]
    n_nodes = len(seeds)
    frontier = seeds
    src_parts, dst_parts, w_parts = [], [], []
    for fanout in fanouts:
        if len(frontier) == 0:
            break
        if fanout < 0 or fanout >= graph.k:
            cols = np.broadcast_to(np.arange(graph.k), (len(frontier), graph.k))
        else:
            # Uniform without replacement, independently per node: the first `fanout` of a
            # random permutation of the K slots.
            cols = np.argsort(rng.random((len(frontier), graph.k)), axis=1)[:, :fanout]
        src = graph.sources[frontier[:, None], cols].ravel()
        w = graph.weights[frontier[:, None], cols].ravel()
        dst = np.repeat(local[frontier], cols.shape[1])
        # New nodes in order of first appearance.
        fresh = src[local[src] < 0]
        if len(fresh):
            _, first = np.unique(fresh, return_index=True)
            fresh = fresh[np.sort(first)]
            local[fresh] = np.arange(n_nodes, n_nodes + len(fresh))
            n_nodes += len(fresh)
            nodes.append(fresh)
        src_parts.append(local[src])
        dst_parts.append(dst)
        w_parts.append(w)
        frontier = fresh
    all_nodes = np.concatenate(nodes)
    if src_parts:
        edge_index = np.stack([np.concatenate(src_parts), np.concatenate(dst_parts)])
        edge_weight = np.concatenate(w_parts).astype(np.float32)
    else:
        edge_index = np.zeros((2, 0), dtype=np.int64)
        edge_weight = np.zeros(0, dtype=np.float32)
    return Subgraph(all_nodes, edge_index, edge_weight, len(seeds))


def seed_batches(seeds: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    """Seed nodes in batches, shuffled when ``rng`` is given (the loader's ``shuffle=True``)."""
    seeds = np.asarray(seeds, dtype=np.int64)
    order = rng.permutation(len(seeds)) if rng is not None else np.arange(len(seeds))
    for start in range(0, len(seeds), batch_size):
        yield seeds[order[start:start + batch_size]]
