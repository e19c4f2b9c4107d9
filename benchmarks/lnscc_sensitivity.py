"""LNSCC's open readings on development sets (data sets in no paper table): the sensitivity table.

Each run: the view the pipeline builds (digits: the raw-pixel view; uci-<name>: the raw
clustering-data-v1 features), an exact kNN graph with M = n_neighbors, `lnscc.fit_predict` with
the method's defaults plus `torch_threads=1`, no progress snapshots, the epoch cap and the reading;
scored with Hungarian ACC and NMI. Labels only score. One JSON line per run (a diverging run
records its error). docs/methods/lnscc.md summarises benchmarks/lnscc-sensitivity.jsonl.

    OMP_NUM_THREADS=1 python benchmarks/lnscc_sensitivity.py --datasets digits uci-ecoli \\
        --seeds 0 1 2 --epochs 5 --jobs 2 [--out benchmarks/lnscc-sensitivity.jsonl]
    OMP_NUM_THREADS=1 python benchmarks/lnscc_sensitivity.py --grid speed --append --datasets digits \\
        uci-ecoli --seeds 0 1 2 --epochs 5 --jobs 2
    OMP_NUM_THREADS=1 python benchmarks/lnscc_sensitivity.py --grid units --units 1.0 auto 0.25 --append \\
        --datasets digits --seeds 0 1 2 --epochs 10 --jobs 2     (ecoli: --units 1.0 auto 0.03)
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
# The readings grid ran with the step options of its time (float32 products, foreach SGD).
READINGS_STEP = {"encoder_dtype": "float32", "sgd_kernel": "foreach", "stop_changed": None}
# The speed options at the chosen reading: the old step against the new default step.
SPEED = [{"encoder_dtype": "float32", "sgd_kernel": "foreach"}, {"encoder_dtype": "bfloat16", "sgd_kernel": "fused"}]
CHOSEN = {"distance": "squared", "batching": "per_set", "reduction": "mean"}
KEYS = (*READINGS, "encoder_dtype", "sgd_kernel", "graph_distance_unit", "max_epochs")
# Values of rows written before a key existed: the readings and speed grids ran at unit 1, cap 5.
OLD_DEFAULTS = {**READINGS_STEP, "graph_distance_unit": 1.0, "max_epochs": 5}


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
    # lnscc seeds numpy and torch from ctx.seed; "epochs" becomes the epochs run, "max_epochs" is the cap
    out = {"dataset": name, "seed": seed, **overrides, "max_epochs": overrides.get("epochs")}
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
        groups[(r["dataset"], *(r.get(k, OLD_DEFAULTS.get(k)) for k in KEYS))].append(r)

    def ms(v):
        return "–" if not v else f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
    lines = []
    for key, rs in sorted(groups.items(), key=lambda item: tuple(map(str, item[0]))):
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
    ap.add_argument("--grid", choices=["readings", "speed", "units"], default="readings",
                    help="readings: distance x batching x reduction (float32, foreach SGD, unit 1); speed: the chosen "
                         "reading with the old step (float32, foreach) and the new default (bfloat16, fused); units: "
                         "the chosen reading and step with each --units value (the plateau rule only)")
    ap.add_argument("--units", nargs="+", default=["1.0", "auto"],
                    help="graph_distance_unit values of --grid units (numbers, auto, median)")
    ap.add_argument("--append", action="store_true", help="add to --out instead of replacing it")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("lnscc-sensitivity.jsonl"))
    args = ap.parse_args()
    if args.grid == "readings":
        grid = [{**dict(zip(READINGS, values)), **READINGS_STEP, "epochs": args.epochs, "graph_distance_unit": 1.0}
                for values in itertools.product(*READINGS.values())]
    elif args.grid == "speed":
        grid = [{**CHOSEN, **step, "epochs": args.epochs, "graph_distance_unit": 1.0, "stop_changed": None}
                for step in SPEED]
    else:
        units = [u if u in ("auto", "median") else float(u) for u in args.units]
        grid = [{**CHOSEN, **SPEED[1], "epochs": args.epochs, "stop_changed": None, "graph_distance_unit": u}
                for u in units]
    jobs = [(d, s, g) for d in args.datasets for g in grid for s in args.seeds]
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, open(args.out, "a" if args.append else "w") as fh:
        for row in pool.map(run_one, *zip(*jobs)):
            rows.append(row)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
    print("\n".join(summarise(rows)))


if __name__ == "__main__":
    main()
