"""Our battery baselines against the clustering-benchmarks suite's published results.

Runs our k-means, Ward (kNN-connected and unstructured) and BIRCH (raw units, the suite's
proportional scaling, per-column z-scores, and the leaderboard's battery setting) on the FCPS and
UCI batteries of clustering-data-v1, and scores them and the suite's published label vectors
(clustering-results-v1, folders ``original/`` and ``scale_standard/``) with the same normalized
clustering accuracy. This is where the comparison in docs/baselines.md and the leaderboard's notes
comes from. Not a test: it needs a clone of https://github.com/gagolews/clustering-results-v1.

    python benchmarks/suite_comparison.py --results /path/to/clustering-results-v1 \\
        [--data $CLUSTERBENCH_MIRROR/clustering-data-v1] [--out benchmarks/suite-comparison.json]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
from pathlib import Path

import numpy as np

SETS = [("fcps", n) for n in "atom chainlink engytime hepta lsun target tetra twodiamonds wingnut".split()] + \
       [("uci", n) for n in "ecoli glass ionosphere sonar statlog wdbc wine yeast".split()]
PUBLISHED = [("original", "sklearn_kmeans"), ("original", "fastcluster_ward"), ("original", "sklearn_birch"),
             ("scale_standard", "sklearn_kmeans"), ("scale_standard", "fastcluster_ward")]


def load(data: Path, battery: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.loadtxt(data / battery / f"{name}.data.gz", ndmin=2).astype(np.float32)
    y = np.loadtxt(data / battery / f"{name}.labels0.gz", dtype=np.int64) - 1   # 0 (noise) -> -1, as our parser
    return x, y


def published(results: Path, prep: str, method: str, battery: str, name: str, k: int) -> dict[str, np.ndarray]:
    """The suite's label vectors for k clusters, one per setting (a file of the checkout, or from its git)."""
    rel = f"{prep}/{method}/{battery}/{name}.result{k}.gz"
    if (results / rel).is_file():
        raw = (results / rel).read_bytes()
    else:
        proc = subprocess.run(["git", "-C", str(results), "show", f"HEAD:{rel}"], capture_output=True)
        if proc.returncode != 0:
            return {}
        raw = proc.stdout
    lines = gzip.decompress(raw).decode().splitlines()
    names = [h.strip('"') for h in lines[0].split(",")]
    cols: dict[str, list[int]] = {nm: [] for nm in names}
    for line in lines[1:]:
        for nm, v in zip(names, line.split(",")):
            cols[nm].append(int(v) if v not in ("", "NA") else -99)
    return {nm: np.array(v) for nm, v in cols.items()}


def ours(name: str, x: np.ndarray, y: np.ndarray, k: int, seeds=(0,), **overrides) -> float:
    from clusterbench.baselines import load_baseline
    from clusterbench.embeddings import View
    from clusterbench.leaderboard import normalized_clustering_accuracy as nca
    from clusterbench.methods import RunContext

    impl = load_baseline(name)
    config = impl.Config(**overrides)
    view = View(x, y, np.zeros(len(x), np.uint8), np.arange(len(x)))
    scores = [nca(y, impl.fit_predict(RunContext(view=view, graph=None, seed=s, n_clusters=k, progress=False),
                                      config).labels) for s in seeds]
    return round(float(np.mean(scores)), 6)


def main() -> None:
    from clusterbench import threads  # noqa: F401  (one BLAS thread, as the pipeline's stages)
    from clusterbench.leaderboard import normalized_clustering_accuracy as nca

    mirror = os.environ.get("CLUSTERBENCH_MIRROR", "").split(os.pathsep)[0]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, required=True, help="a clone of gagolews/clustering-results-v1")
    ap.add_argument("--data", type=Path, default=Path(mirror) / "clustering-data-v1" if mirror else None,
                    help="clustering-data-v1 (default: $CLUSTERBENCH_MIRROR/clustering-data-v1)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("suite-comparison.json"))
    args = ap.parse_args()
    if args.data is None or not args.data.is_dir():
        ap.error(f"--data {args.data}: not a folder; give the clustering-data-v1 folder")
    rows = []
    for battery, name in SETS:
        x, y = load(args.data, battery, name)
        k = int(y.max() + 1)
        r = {"dataset": f"{battery}-{name}", "n": len(x), "k": k,
             "kmeans": ours("kmeans", x, y, k, seeds=(0, 1, 2)), "ward": ours("ward", x, y, k),
             "agglomerative": ours("agglomerative", x, y, k),
             "birch_battery": ours("birch", x, y, k, max_samples=None, scale="proportional", adapt_threshold=True)}
        for scale in ("none", "proportional", "standard"):
            r[f"birch_{scale}"] = ours("birch", x, y, k, max_samples=None, scale=scale)
        pub = {f"{prep}/{col}": round(float(nca(y, lab - 1)), 6)
               for prep, method in PUBLISHED
               for col, lab in published(args.results, prep, method, battery, name, k).items()
               if lab.min() >= 1 and lab.max() == k}
        r.update(pub_kmeans=pub.get("original/sklearn_kmeans"), pub_ward=pub.get("original/fastcluster_ward"),
                 pub_birch_T05_BF50=pub.get("original/sklearn_birch_T0.5_BF50"),
                 pub_std_kmeans=pub.get("scale_standard/sklearn_kmeans"),
                 pub_std_ward=pub.get("scale_standard/fastcluster_ward"),
                 pub_birch_best=max((v for c, v in pub.items() if c.startswith("original/sklearn_birch")), default=None))
        rows.append(r)
        print(json.dumps(r), flush=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
