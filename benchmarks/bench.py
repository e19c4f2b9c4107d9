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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--d", type=int, default=784)
    ap.add_argument("--k", type=int, default=50)
    args = ap.parse_args()
    x = np.random.default_rng(0).random((args.n, args.d), dtype=np.float32)
    rows = bench_knn(x, args.k) + bench_graph(args.n, args.k)
    for r in rows:
        extra = f"  (agreement {r['agreement_with_ours']})" if "agreement_with_ours" in r else ""
        print(f"{r['task']:<55} {r['impl']:<40} {r['s']:8.3f} s{extra}")
    out = Path(__file__).with_name(f"results-{platform.node() or 'host'}.json")
    out.write_text(json.dumps({"machine": platform.machine(), "args": vars(args), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
