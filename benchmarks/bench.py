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
    """Steps/s of LNSCC's training loop body on one epoch's union pairs of ``x`` (M = 10 graph),
    one torch thread, default Config. ``legacy`` is the loop as it was (NumPy batch per step,
    np.unique, boolean-mask per-kind losses, float() of every loss);
    ``fast`` is today's default (pair table on the device, torch.unique, one index_add, logs
    summed on the device, foreach SGD); ``fast+bf16`` adds ``encoder_dtype: bfloat16``. The
    implementations run interleaved ``repeat`` times over the same batches and the best time
    counts (the machine is shared)."""
    import torch

    from clusterbench import graphs
    from clusterbench.methods import lnscc

    torch.set_num_threads(1)
    graph = graphs.knn(x, 10, use_gpu=False)
    rng = np.random.default_rng(0)
    base = lnscc.Config()
    sets = lnscc.build_pair_sets(graph, base)
    dis = lnscc.sample_disconnected(sets.a, sets.n_dis, rng)
    pairs = lnscc.epoch_pairs(sets, dis, rng)
    steps_per_epoch = -(-len(pairs) // base.batch_size)
    x_t = torch.as_tensor(x)
    impls = {"legacy": base.model_copy(update={"step_impl": "legacy"}), "fast": base,
             "fast+bf16": base.model_copy(update={"encoder_dtype": "bfloat16"})}

    def run(config, n_steps: int) -> float:
        torch.manual_seed(0)
        encoder, head = lnscc.build_model(x.shape[1], config, n_clusters)
        params = list(encoder.parameters()) + list(head.parameters())
        fast = config.step_impl == "fast"
        opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                              foreach=fast)
        t0 = time.perf_counter()
        if fast:
            pairs_t, sums_t = torch.as_tensor(pairs), torch.zeros(5, dtype=torch.float64)
        total = 0.0
        for b in range(n_steps):
            eta = lnscc.eta_schedule(b + 1, config.delta, config.xi)
            if fast:
                loss, logged = lnscc.batch_loss_fast(encoder, head, x_t, pairs_t[b * 200:(b + 1) * 200], config, eta)
                sums_t += logged
            else:
                loss, logs = lnscc.batch_loss(encoder, head, x_t, pairs[b * 200:(b + 1) * 200], config, eta, "cpu")
                if not torch.isfinite(loss):
                    raise FloatingPointError
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if not fast:
                total += float(loss.detach()) + sum(logs.values())
        if fast:
            total = float(sums_t.sum())
        return time.perf_counter() - t0

    best = {name: float("inf") for name in impls}
    for name, config in impls.items():  # warm-up (oneDNN kernels, allocator)
        run(config, 5)
    for _ in range(repeat):
        for name, config in impls.items():
            best[name] = min(best[name], run(config, steps))
    task = f"LNSCC SGD step {label} n={len(x)} d={x.shape[1]} ({steps_per_epoch} steps/epoch)"
    rows = []
    for name, seconds in best.items():
        per_step = seconds / steps
        rows.append({"task": task, "impl": f"lnscc {name}", "s": per_step, "steps_per_s": round(1 / per_step, 2),
                     "epoch_s": round(per_step * steps_per_epoch, 1),
                     "speedup_vs_legacy": round(best["legacy"] / seconds, 2)})
    return rows


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
        if "steps_per_s" in r:
            extra = f"  ({r['steps_per_s']} steps/s, epoch {r['epoch_s']} s, x{r['speedup_vs_legacy']} vs legacy)"
        print(f"{r['task']:<55} {r['impl']:<40} {r['s']:8.3f} s{extra}")
    out = Path(__file__).with_name(f"results-{platform.node() or 'host'}.json")
    out.write_text(json.dumps({"machine": platform.machine(), "args": vars(args), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
