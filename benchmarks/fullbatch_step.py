"""Full-batch ConstellationNet step on mnist-sample10k: the graph prepared every step (the sampled
path's code applied to the whole graph) against `training: full_batch`'s caches (the encoder's CSR
adjacency / edge list and GCN's normalisation built once by `GNNEncoder.fix_graph(True)`, DMoN's
symmetrised adjacency by `unsupervised.whole_graph`) — issue 20.

    OMP_NUM_THREADS=1 CLUSTERBENCH_MIRROR=$PWD/../shared/datasets PYTHONPATH=. python benchmarks/fullbatch_step.py

A step is what `fit_predict` runs once per epoch: forward of the 5-layer encoder (784 -> 392) and
DMoN's head, the weighted loss, backward, Adam. The two variants' steps alternate (same machine
load for both); median of ``--repeats`` after one warm-up each, one thread. Writes benchmarks/fullbatch-step.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gnn_layers import load_graph  # noqa: E402

from clusterbench.methods.constellationnet import unsupervised as U  # noqa: E402


def make_step(conv: str, cached: bool, x, graph):
    """One training step's closure: the graph prepared every step, or full_batch's caches."""
    config = U.Config(conv=conv, training="full_batch", attention_impl="sparse")
    torch.manual_seed(0)
    model = U.build_model(config, x.shape[1], 10)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    edge_index, edge_weight = U.full_graph_tensors(graph, "cpu")
    whole = U.whole_graph(graph, config, "cpu") if cached else (edge_index, edge_weight, None)
    model.encoder.fix_graph(cached)
    model.train()

    def step():
        loss, _ = U.batch_loss(model, x, whole[0], whole[1], config, whole[2])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return step


def paired_times(conv: str, x, graph, repeats: int) -> tuple[list[float], list[float]]:
    """Steps of the two variants alternated, so that both see the same machine load; the first
    step of each (it builds the caches) is a warm-up."""
    steps = {"plain": make_step(conv, False, x, graph), "cached": make_step(conv, True, x, graph)}
    times = {"plain": [], "cached": []}
    for i in range(repeats + 1):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if i:
                times[name].append(time.perf_counter() - start)
    return times["plain"], times["cached"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--convs", nargs="+", default=["gcn", "gin", "gat", "sgat"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "fullbatch-step.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    k = int(yaml.safe_load((ROOT / "params.yaml").read_text())["model"]["k"])
    x_np, graph = load_graph(k)
    x = torch.from_numpy(x_np)
    rows = []
    print("| conv | graph prepared every step, s | cached (full_batch), s | saved |")
    print("|---|---:|---:|---:|")
    for conv in args.convs:
        plain_times, cached_times = paired_times(conv, x, graph, args.repeats)
        plain, cached = statistics.median(plain_times), statistics.median(cached_times)
        rows.append({"conv": conv, "every_step_s": round(plain, 3), "cached_s": round(cached, 3)})
        print(f"| {conv} | {plain:.3f} | {cached:.3f} | {1 - cached / plain:.0%} |", flush=True)
    Path(args.out).write_text(json.dumps({"machine": platform.processor() or platform.machine(), "threads": 1,
                                          "nodes": graph.n, "edges": int(graph.n * graph.k), "rows": rows},
                                         indent=1) + "\n")


if __name__ == "__main__":
    main()
