"""LNSCC's open readings on development sets (data sets in no paper table): the sensitivity table.

Each run: the view the pipeline builds (digits: the raw-pixel view; uci-<name>: the raw
clustering-data-v1 features), an exact kNN graph with M = n_neighbors, `lnscc.fit_predict` with
the method's defaults plus `torch_threads=1`, no progress snapshots, the epoch cap and the reading;
scored with Hungarian ACC and NMI. Labels only score. One JSON line per run (a diverging run
records its error). docs/methods/lnscc.md summarises benchmarks/lnscc-sensitivity.jsonl.

    OMP_NUM_THREADS=1 python benchmarks/lnscc_sensitivity.py --datasets digits uci-ecoli \\
        --seeds 0 1 2 --epochs 5 --jobs 2 [--out benchmarks/lnscc-sensitivity.jsonl]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

READINGS = {"distance": ("euclidean", "squared"), "batching": ("union", "per_set"), "reduction": ("mean", "sum")}


def load_view(name: str):
    from clusterbench.embeddings import View, raw_pixels

    if name == "digits":
        from clusterbench.datasets import load

        arrays = load("digits")   # prepared by `dvc repro download@digits`
        x, shape = raw_pixels(arrays)
        y = arrays.y.astype(np.int64)
    elif name.startswith("uci-"):
        from clusterbench.datasets.parsers import read_matrix_text

        mirror = os.environ.get("CLUSTERBENCH_MIRROR", "").split(os.pathsep)[0]
        base = Path(mirror) / "clustering-data-v1" / "uci" / name[4:]
        x = read_matrix_text(f"{base}.data.gz").astype(np.float32)
        y = read_matrix_text(f"{base}.labels0.gz", dtype=np.int64).ravel() - 1
        shape = ()
    else:
        raise SystemExit(f"unknown data set {name!r}: digits or uci-<name>")
    return View(x, y, np.zeros(len(y), np.uint8), np.arange(len(y)), shape)


def run_one(name: str, seed: int, overrides: dict) -> dict:
    from clusterbench import graphs, metrics
    from clusterbench.methods import RunContext, lnscc

    view = load_view(name)
    config = lnscc.Config(**{"torch_threads": 1, "progress_snapshots": False, **overrides})
    graph = graphs.knn(view.X, config.n_neighbors)
    out = {"dataset": name, "seed": seed, **overrides}   # lnscc seeds numpy and torch from ctx.seed
    t0 = time.time()
    try:
        result = lnscc.fit_predict(RunContext(view=view, graph=graph, seed=seed, n_clusters=view.n_clusters,
                                              progress=False), config)
    except Exception as exc:   # e.g. a non-finite loss under reduction=sum
        out["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    else:
        out.update(acc=round(metrics.hungarian_accuracy(view.y, result.labels), 4),
                   nmi=round(metrics.nmi(view.y, result.labels), 4), epochs=result.extra.get("epochs"))
    out["wall_s"] = round(time.time() - t0, 1)
    return out


def summarise(rows: list[dict]) -> list[str]:
    groups = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], *(r.get(k) for k in READINGS))].append(r)

    def ms(v):
        return "–" if not v else f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
    lines = []
    for key, rs in sorted(groups.items()):
        ok = [r for r in rs if "acc" in r]
        lines.append(f"{' / '.join(map(str, key))}: n={len(rs)} ok={len(ok)} ACC {ms([r['acc'] for r in ok])} "
                     f"NMI {ms([r['nmi'] for r in ok])} wall {ms([r['wall_s'] for r in rs])}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["digits"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("lnscc-sensitivity.jsonl"))
    args = ap.parse_args()
    grid = [dict(zip(READINGS, values), epochs=args.epochs) for values in itertools.product(*READINGS.values())]
    jobs = [(d, s, g) for d in args.datasets for g in grid for s in args.seeds]
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, open(args.out, "w") as fh:
        for row in pool.map(run_one, *zip(*jobs)):
            rows.append(row)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
    print("\n".join(summarise(rows)))


if __name__ == "__main__":
    main()
