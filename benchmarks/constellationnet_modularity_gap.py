"""How far DMoN's sampled-subgraph objective is from the whole-graph one (issue 20), per adjacency.

The ground-truth partition of a data set is scored (modularity, DMoN's objective) on the whole
kNN graph and on the subgraphs the paper's protocol trains on (64 seeds, 30 neighbours over two
hops, one epoch of batches), under each DMoN adjacency the method offers: the text's 0/1 directed
edge index (default) and the authors'-code-era weighted undirected one. Labels describe the
objective here; nothing is chosen with them. Reads the pipeline's view and graph files.

    OMP_NUM_THREADS=1 python benchmarks/constellationnet_modularity_gap.py [--data mnist-sample10k] \\
        [--out benchmarks/constellationnet-modularity-gap.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

ADJACENCIES = {"edge index, 0/1, directed (default)": (False, False),
               "undirected, 0/1": (True, False),
               "undirected, inverse distance (before issue 20)": (True, True)}


def main(argv=None) -> None:
    from clusterbench import graphs, io
    from clusterbench.methods.constellationnet.common import subgraph_tensors
    from clusterbench.methods.constellationnet.models import adjacency_edges, dmon_losses
    from clusterbench.methods.constellationnet.sampling import InNeighbours, sample_subgraph, seed_batches
    from clusterbench.methods.constellationnet.unsupervised import partition_modularity

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="mnist-sample10k")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("constellationnet-modularity-gap.json"))
    args = parser.parse_args(argv)
    base = Path("data") / args.profile
    labels = np.asarray(io.read_npz(base / "views" / f"{args.data}-raw.npz")["y"], dtype=np.int64)
    graph = InNeighbours.from_knn(graphs.KnnGraph.load(base / "graphs" / f"{args.data}-raw.npz"))
    k = int(labels.max()) + 1
    onehot = torch.nn.functional.one_hot(torch.from_numpy(labels), k).float()
    rng = np.random.default_rng(args.seed)
    subgraphs = [sample_subgraph(graph, seeds, [30, 30], rng) for seeds in seed_batches(np.arange(graph.n), 64, rng)]
    no_in_edge = [float(np.mean(np.bincount(sub.edge_index[1], minlength=sub.num_nodes) == 0)) for sub in subgraphs]
    rows = {}
    for name, (symmetric, weighted) in ADJACENCIES.items():
        whole = partition_modularity(graph, labels, k, symmetric, weighted)
        per_sample = []
        for sub in subgraphs:
            edge_index, weight = subgraph_tensors(sub, "cpu")
            pairs, w, n = adjacency_edges(edge_index, weight if weighted else None, sub.num_nodes, symmetric)
            per_sample.append(-float(dmon_losses(onehot[torch.from_numpy(sub.nodes)], pairs, w, n).spectral))
        rows[name] = {"whole_graph": round(whole, 4), "sampled_mean": round(statistics.mean(per_sample), 4),
                      "sampled_sd": round(statistics.stdev(per_sample), 4)}
        print(f"{name}: whole graph {whole:.3f}, sampled {statistics.mean(per_sample):.3f} "
              f"± {statistics.stdev(per_sample):.3f}", flush=True)
    out = {"data": args.data, "seed": args.seed, "subgraphs": len(subgraphs),
           "nodes_without_in_edge": round(statistics.mean(no_in_edge), 3), "ground_truth_modularity": rows}
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
