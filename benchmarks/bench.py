"""Speed benchmarks: our kNN / graph / training code against the obvious alternatives.

Not a test: numbers depend on the machine. Writes benchmarks/results-<host>.json and prints a
table. Run `python benchmarks/bench.py --n 10000` (default sizes take ~1-2 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np


def timed(fn, repeat: int = 1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_knn(x: np.ndarray, k: int) -> list[dict]:
    from sklearn.neighbors import NearestNeighbors

    from clusterbench import graphs

    rows = []
    t, ours = timed(lambda: graphs.knn(x, k, use_gpu=False))
    rows.append({"task": f"exact kNN n={len(x)} d={x.shape[1]} k={k}", "impl": "clusterbench.graphs.knn (faiss)", "s": t})
    t, ref = timed(lambda: NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(x))
    rows.append({"task": rows[-1]["task"], "impl": "sklearn NearestNeighbors(brute)", "s": t})
    agree = float((np.sort(ref[1][:, 1:], 1) == np.sort(ours.indices, 1)).mean())
    rows[-1]["agreement_with_ours"] = round(agree, 4)
    try:
        import torch

        xt = torch.from_numpy(x)

        def torch_knn():
            out = []
            for s in range(0, len(xt), 2048):
                d = torch.cdist(xt[s:s + 2048], xt)
                out.append(d.topk(k + 1, largest=False).indices[:, 1:])
            return torch.cat(out)

        t, _ = timed(torch_knn)
        rows.append({"task": rows[-1]["task"], "impl": "torch.cdist + topk (blocked)", "s": t})
    except ImportError:
        pass
    return rows


def bench_graph(n: int, k: int) -> list[dict]:
    import scipy.sparse as sp

    from clusterbench import graphs

    rng = np.random.default_rng(0)
    idx = np.stack([rng.choice(n, k, replace=False) for _ in range(n)])
    dist = rng.random((n, k)).astype(np.float32)
    task = f"LNSCC adjacency A = W + W^T - W*W^T, n={n} k={k}"
    t, _ = timed(lambda: graphs.fuzzy_union(graphs.to_sparse(idx, graphs.local_softmax(dist))))
    rows = [{"task": task, "impl": "clusterbench.graphs (scipy.sparse)", "s": t}]
    if n <= 20000:
        def dense():
            w = np.zeros((n, n), dtype=np.float32)
            np.put_along_axis(w, idx, graphs.local_softmax(dist).astype(np.float32), axis=1)
            return w + w.T - w * w.T
        t, _ = timed(dense)
        rows.append({"task": task, "impl": "dense numpy N x N", "s": t})
    del sp
    return rows


# --- LNSCC: SGD steps per second, legacy step vs the fast step, on the same pairs -----------------

def lnscc_view(dataset: str | None, n: int, d: int) -> np.ndarray:
    """Features of a prepared data set as the `raw` embedding makes them ([0, 1] pixels), or random."""
    if dataset:
        from clusterbench import datasets

        try:
            arrays = datasets.load(dataset)
        except Exception as err:  # not prepared here: say so and time random data of the same size
            print(f"lnscc benchmark: {err}; using random {n} x {d} data")
        else:
            x = arrays.X.reshape(len(arrays.X), -1).astype(np.float32)
            return x / 255.0 if arrays.X.dtype == np.uint8 else x
    return np.random.default_rng(0).random((n, d), dtype=np.float32)


def bench_lnscc_steps(x: np.ndarray, steps: int = 100, repeat: int = 3, n_clusters: int = 10,
                      label: str = "") -> list[dict]:
    """Training throughput of LNSCC's loop body on ``x``'s pair sets (M = 10 graph, squared d),
    one torch thread, in pairs per second, and the epoch time it implies (every pair once).

    ``legacy`` is the loop as it was before issue 10 (NumPy batch per step, np.unique,
    boolean-mask per-kind losses, a float() per loss, for-loop SGD, float32, union batches);
    the other rows switch on today's options one at a time, ending at the defaults (fast step,
    fused SGD, per-set batches; bfloat16 products on a GPU, float32 on the CPU: ``auto``). The variants run interleaved
    ``repeat`` times over the same batches and the best time counts (the machine is shared)."""
    import torch

    from clusterbench import graphs
    from clusterbench.methods import lnscc

    torch.set_num_threads(1)
    graph = graphs.knn(x, 10, use_gpu=False)
    rng = np.random.default_rng(0)
    first = dict(distance="squared", batching="union", encoder_dtype="float32", sgd_kernel="foreach")
    variants = {
        "legacy (float32, union)": lnscc.Config(**first, step_impl="legacy"),
        "fast (float32, foreach, union)": lnscc.Config(**first),
        "fast + bfloat16": lnscc.Config(**{**first, "encoder_dtype": "bfloat16"}),
        "fast + bfloat16 + fused SGD": lnscc.Config(**{**first, "encoder_dtype": "bfloat16", "sgd_kernel": "fused"}),
        "per-set batches, bfloat16 (the GPU default)": lnscc.Config(encoder_dtype="bfloat16"),
        "default on the CPU (per-set, auto = float32)": lnscc.Config(),
    }
    sets = lnscc.pairs.build_pair_sets(graph, lnscc.Config())
    dis = lnscc.pairs.sample_disconnected(sets.a, sets.n_dis, rng)
    union = lnscc.pairs.epoch_pairs(sets, dis, rng)
    tables = lnscc.pairs.per_set_tables(sets, dis, rng)
    pairs_per_epoch = len(union)
    x_t = torch.as_tensor(x)

    def batches(config, n_steps: int) -> list[np.ndarray]:
        b = config.batch_size
        if config.batching == "union":
            return [union[i * b:(i + 1) * b] for i in range(n_steps)]
        return [lnscc.pairs.per_set_batch(tables, i, b) for i in range(n_steps)]

    def run(config, n_steps: int) -> tuple[float, int]:
        """Seconds for n_steps steps and the pairs they took."""
        torch.manual_seed(0)
        encoder, head = lnscc.model.build_model(x.shape[1], config, n_clusters)
        opt = lnscc.training.make_optimiser(list(encoder.parameters()) + list(head.parameters()), config)
        fast = config.step_impl == "fast"
        todo = batches(config, n_steps)
        todo_t = [torch.as_tensor(t) for t in todo] if fast else todo
        sums_t = torch.zeros(5, dtype=torch.float64)
        total = 0.0
        t0 = time.perf_counter()
        for i, batch in enumerate(todo_t):
            eta = lnscc.losses.eta_schedule(i + 1, config.delta, config.xi)
            if fast:
                loss, logged = lnscc.training.batch_loss_fast(encoder, head, x_t, batch, config, eta)
                sums_t += logged
            else:
                loss, logs = lnscc.training.batch_loss(encoder, head, x_t, batch, config, eta, "cpu")
                if not torch.isfinite(loss):
                    raise FloatingPointError
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if not fast:
                total += float(loss.detach()) + sum(logs.values())
        seconds = time.perf_counter() - t0
        return seconds, sum(len(t) for t in todo)

    def n_steps(config) -> int:  # the same number of pairs for every variant
        per_step = config.batch_size * (1 if config.batching == "union" else len(tables))
        return max(1, steps * 200 // per_step)

    best = {name: float("inf") for name in variants}
    for name, config in variants.items():  # warm-up (oneDNN kernels, allocator)
        run(config, 5)
    for _ in range(repeat):
        for name, config in variants.items():
            seconds, pairs = run(config, n_steps(config))
            best[name] = min(best[name], seconds / pairs)
    task = f"LNSCC training {label} n={len(x)} d={x.shape[1]} ({pairs_per_epoch:,} pairs/epoch)"
    legacy = best["legacy (float32, union)"]
    return [{"task": task, "impl": f"lnscc {name}", "s": per_pair, "pairs_per_s": round(1 / per_pair),
             "epoch_s": round(per_pair * pairs_per_epoch, 1), "speedup_vs_legacy": round(legacy / per_pair, 2)}
            for name, per_pair in best.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--d", type=int, default=784)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--only", choices=["knn", "graph", "lnscc"], action="append",
                    help="run only these sections (repeatable; default: all)")
    ap.add_argument("--lnscc-dataset", default="fashion-mnist-test",
                    help="prepared data set for the LNSCC step benchmark ('' = random n x d)")
    ap.add_argument("--lnscc-steps", type=int, default=100)
    args = ap.parse_args()
    only = set(args.only or ["knn", "graph", "lnscc"])
    x = np.random.default_rng(0).random((args.n, args.d), dtype=np.float32)
    rows = (bench_knn(x, args.k) if "knn" in only else []) + (bench_graph(args.n, args.k) if "graph" in only else [])
    if "lnscc" in only:
        rows += bench_lnscc_steps(lnscc_view(args.lnscc_dataset, args.n, args.d), args.lnscc_steps,
                                  label=args.lnscc_dataset or "random")
    for r in rows:
        extra = f"  (agreement {r['agreement_with_ours']})" if "agreement_with_ours" in r else ""
        if "pairs_per_s" in r:
            extra = f"  ({r['pairs_per_s']} pairs/s, epoch {r['epoch_s']} s, x{r['speedup_vs_legacy']} vs legacy)"
        cost = f"{r['s'] * 1e6:8.1f} us/pair" if "pairs_per_s" in r else f"{r['s']:8.3f} s"
        print(f"{r['task']:<55} {r['impl']:<40} {cost}{extra}")
    out = Path(__file__).with_name(f"results-{platform.node() or 'host'}.json")
    out.write_text(json.dumps({"machine": platform.machine(), "args": vars(args), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
