"""Step time of PyG's GATConv / SuperGATConv against clusterbench.methods.gnn_layers (sparse kernels),
on mnist-sample10k's kNN graph, one thread (docs/methods/constellationnet.md, "Sparse attention").

    OMP_NUM_THREADS=1 CLUSTERBENCH_MIRROR=$PWD/../shared/datasets PYTHONPATH=. python benchmarks/gnn_layers.py

Data: mnist-sample10k through the project's dataset loader (the raw view: 784 pixels scaled to
[0, 1]), its exact kNN graph with K = params.yaml model.k, edges neighbour -> node with
inverse-distance weights, as ConstellationNet trains on. Two graphs: the whole graph (10,000
nodes, 500,000 edges) and one training batch (64 seeds, 30 neighbours over 2 hops, the paper's
sampler).

A step is forward + backward in training mode of (a) one layer as models.py builds it for raw
MNIST (784 -> 392; GAT: 1 head, the edge weight as a 1-d edge_attr; SuperGAT: 8 heads x 49, "MX",
edge_sample_ratio 0.8, with its attention loss and negative sampling) and (b) the whole encoder,
GNNEncoder with 5 x [conv -> BatchNorm -> ReLU -> dropout 0.3], as a training step runs it
(``attention_impl`` pyg | sparse). The loss is a fixed random linear functional of the output
(plus SuperGAT's attention loss): DMoN's part is the same for both and excluded. Median of
``--repeats`` after one warm-up; PyG's whole-graph layer runs once without warm-up (each run
takes tens of seconds and ~5 GB), and PyG's whole-graph encoder is skipped unless
``--pyg-full-encoder`` (minutes and over 10 GB). Also timed: one whole-graph negative sample of
SuperGAT's size, PyG's ``negative_sampling`` against ``sample_negative_edges``.

Prints a table and writes benchmarks/gnn-layers.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clusterbench import datasets  # noqa: E402
from clusterbench.graphs import knn  # noqa: E402
from clusterbench.methods.constellationnet.models import GNNEncoder, import_pyg  # noqa: E402
from clusterbench.methods.constellationnet.sampling import InNeighbours, sample_subgraph  # noqa: E402
from clusterbench.methods.gnn_layers import GATLayer, SuperGATLayer, sample_negative_edges  # noqa: E402

HIDDEN, SGAT_HEADS, LAYERS = 392, 8, 5


def load_graph(k: int):
    with tempfile.TemporaryDirectory() as tmp:
        arrays = datasets.prepare("mnist-sample10k", Path(tmp) / "mnist-sample10k",
                                  datasets.Fetcher(offline=True, progress=False, cache_dir=Path(tmp) / "cache"))
    x = arrays.X.reshape(len(arrays.X), -1).astype(np.float32) / 255.0  # the raw view (RawStep)
    return x, InNeighbours.from_knn(knn(x, k))


def make_layer(conv: str, impl: str, d_in: int) -> torch.nn.Module:
    import_pyg()
    from torch_geometric.nn import GATConv, SuperGATConv

    torch.manual_seed(0)
    if conv == "gat":
        return (GATLayer if impl == "sparse" else GATConv)(d_in, HIDDEN, heads=1, concat=True, edge_dim=1)
    return (SuperGATLayer if impl == "sparse" else SuperGATConv)(
        d_in, HIDDEN // SGAT_HEADS, heads=SGAT_HEADS, concat=True, attention_type="MX", edge_sample_ratio=0.8)


def layer_step(layer, conv, x, edge_index, weight, probe):
    out = layer(x, edge_index, edge_attr=weight.view(-1, 1)) if conv == "gat" else layer(x, edge_index)
    loss = (out * probe).sum()
    if conv == "sgat":
        loss = loss + layer.get_attention_loss()
    loss.backward()


def encoder_step(encoder, x, edge_index, weight, probe):
    out, attention = encoder(x, edge_index, weight)
    ((out * probe).sum() + attention).backward()


def timed(fn, repeats: int, warmup: bool) -> list[float]:
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median(times: list[float] | None) -> float | None:
    return None if times is None else round(statistics.median(times), 3)


def rounded(times: list[float] | None) -> list[float] | None:
    return None if times is None else [round(t, 3) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--pyg-full-encoder", action="store_true",
                    help="also time PyG's 5-layer encoder on the whole graph")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "gnn-layers.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    k = int(yaml.safe_load((ROOT / "params.yaml").read_text())["model"]["k"])
    start_all = time.perf_counter()
    x_np, graph = load_graph(k)
    rng = np.random.default_rng(0)
    sub = sample_subgraph(graph, rng.permutation(graph.n)[:64], [30, 30], rng)
    full_ei, full_w = graph.edge_index()
    graphs = {
        "sampled": (torch.from_numpy(x_np[sub.nodes]), torch.from_numpy(sub.edge_index),
                    torch.from_numpy(sub.edge_weight.astype(np.float32))),
        "full": (torch.from_numpy(x_np), torch.from_numpy(full_ei), torch.from_numpy(full_w.astype(np.float32))),
    }
    rows = []
    for graph_name, (x, edge_index, weight) in graphs.items():
        probe = torch.randn(x.size(0), HIDDEN, generator=torch.Generator().manual_seed(1))
        for conv in ("gat", "sgat"):
            for impl in ("pyg", "sparse"):
                pyg_full = impl == "pyg" and graph_name == "full"
                torch.manual_seed(0)
                layer = make_layer(conv, impl, x.size(1)).train()
                layer_times = timed(lambda: layer_step(layer, conv, x, edge_index, weight, probe),
                                    1 if pyg_full else args.repeats, warmup=not pyg_full)
                encoder_times = None
                if not pyg_full or args.pyg_full_encoder:
                    torch.manual_seed(0)
                    encoder = GNNEncoder(conv, x.size(1), HIDDEN, LAYERS, gat_heads=1, sgat_heads=SGAT_HEADS,
                                         attention_impl=impl).train()
                    encoder_times = timed(lambda: encoder_step(encoder, x, edge_index, weight, probe),
                                          1 if pyg_full else args.repeats, warmup=not pyg_full)
                rows.append({"graph": graph_name, "nodes": int(x.size(0)), "edges": int(edge_index.size(1)),
                             "conv": conv, "impl": impl,
                             "layer_step_s": median(layer_times), "encoder_step_s": median(encoder_times),
                             "layer_times_s": rounded(layer_times), "encoder_times_s": rounded(encoder_times)})
                print(json.dumps(rows[-1]), flush=True)

    # SuperGAT's negatives on the whole graph: 0.5 * 0.8 * (edges + one self-loop per node), as in training.
    import_pyg()
    from torch_geometric.utils import add_self_loops, negative_sampling, to_undirected

    _, full_index, _ = graphs["full"]
    looped, _ = add_self_loops(full_index, num_nodes=graph.n)
    count = int(0.5 * 0.8 * looped.size(1))
    start = time.perf_counter()
    negative_sampling(to_undirected(looped, num_nodes=graph.n), graph.n, num_neg_samples=count)
    pyg_neg = time.perf_counter() - start
    start = time.perf_counter()
    sample_negative_edges(looped, graph.n, count, generator=torch.Generator().manual_seed(0))
    our_neg = time.perf_counter() - start

    print(f"\nmnist-sample10k, K = {k}, one thread, {platform.processor() or platform.machine()}; "
          f"step = forward + backward, seconds (median of {args.repeats})\n")
    print("| graph | conv | layer: PyG | layer: sparse | speed-up "
          "| 5-layer encoder: PyG | encoder: sparse | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    by = {(r["graph"], r["conv"], r["impl"]): r for r in rows}
    for graph_name in graphs:
        for conv in ("gat", "sgat"):
            p, s = by[(graph_name, conv, "pyg")], by[(graph_name, conv, "sparse")]
            enc_p, enc_s = p["encoder_step_s"], s["encoder_step_s"]
            enc_p_text = "not run" if enc_p is None else f"{enc_p:.2f}"
            enc_gain = "-" if enc_p is None else f"{enc_p / enc_s:.1f}x"
            print(f"| {graph_name} ({p['nodes']:,} nodes, {p['edges']:,} edges) | {conv} | {p['layer_step_s']:.2f} | "
                  f"{s['layer_step_s']:.2f} | {p['layer_step_s'] / s['layer_step_s']:.1f}x | {enc_p_text} | "
                  f"{enc_s:.2f} | {enc_gain} |")
    print(f"\nSuperGAT negatives on the whole graph ({count:,} pairs): PyG negative_sampling {pyg_neg:.2f} s, "
          f"sample_negative_edges {our_neg:.3f} s")
    total = time.perf_counter() - start_all
    print(f"total {total:.0f} s")
    result = {"machine": platform.machine(), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "load_average": os.getloadavg(), "k": k,
              "rows": rows,
              "negative_sampling": {"pairs": count, "pyg_s": round(pyg_neg, 3), "ours_s": round(our_neg, 3)},
              "total_s": round(total, 1)}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
