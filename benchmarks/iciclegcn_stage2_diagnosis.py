"""IcicleGCN stage 2 (M-GCN) on a finished run's stage-1 checkpoints, with label-free health only.

Why: the CPU row `iciclegcn-cnn-fashion-mnist-test` predicted 2-4 of 10 clusters. This script
re-runs stage 2 from the run's stage-1 checkpoint of one seed, optionally on the first N images
(stage 2 is full batch: ~8 s per iteration on 10,000 rows on one core), with other stage-2
settings, and records per logged iteration the losses and how many clusters Q and each GCN's
argmax use. With ``--score-every N`` it also keeps the argmax of Q and of the GCNs' mean every N
iterations and, after the run, scores them with the labels (the sensitivity of the result to the
iteration count, published; nothing is chosen from it: the labels never reach training).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/iciclegcn_stage2_diagnosis.py \
        --seed 0 --rows 2000 --set '{"gcn_iterations": 200}'

Rows are appended to benchmarks/iciclegcn-stage2-diagnosis.jsonl.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from clusterbench import metrics, resolve, runs
from clusterbench.methods import RunContext
from clusterbench.methods import iciclegcn

OUT = Path(__file__).with_name("iciclegcn-stage2-diagnosis.jsonl")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="iciclegcn-cnn-fashion-mnist-test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=int, default=0, help="first N images only (0 = all)")
    ap.add_argument("--score-every", type=int, default=0, help="score the assignments every N iterations (0: no)")
    ap.add_argument("--set", default="{}", help="stage-2 settings as JSON, e.g. '{\"gcn_stream_lr\": 0.001}'")
    args = ap.parse_args()
    torch.set_num_threads(1)
    update = json.loads(args.set)
    params = resolve.load_params("runs", args.run)
    _, config = runs.method_config(params, "train", args.run)
    config = config.model_copy(update={"stage1_from": f"data/{params.train[args.run].profile}/runs/{args.run}",
                                       **update})
    view, _ = runs.load_run_view(params.train[args.run])
    rows: list[dict] = []
    ctx = RunContext(view=view, graph=None, seed=args.seed, n_clusters=view.n_clusters, progress=False,
                     log=lambda row: (rows.append(row), print(json.dumps(row), flush=True)))
    images = iciclegcn.training.view_images(ctx)
    model, _, _ = iciclegcn.training.train_stage1(ctx, config, images)
    if args.rows:
        images = images[:args.rows]
    start = time.perf_counter()
    y = view.y[:len(images)]
    scores: list[dict] = []

    def keep(iteration: int, assignments: dict) -> None:
        """Score Q's and the GCNs' argmax now (printed at once, so a stopped run keeps its curve);
        nothing flows back into training."""
        if args.score_every and ((iteration - 1) % args.score_every == 0 or iteration == config.gcn_iterations):
            out = {k: v.argmax(1).cpu().numpy() for k, v in assignments.items() if v is not None}
            row = {"iteration": iteration,
                   **{f"{k}_{m}": round(float(f(y, labels)), 4) for k, labels in out.items()
                      for m, f in (("acc", metrics.hungarian_accuracy), ("nmi", metrics.nmi))},
                   **{f"{k}_clusters_used": int(len(np.unique(labels))) for k, labels in out.items()}}
            scores.append(row)
            print(json.dumps({"score": row}), flush=True)

    probs, _, _, extra = iciclegcn.training.train_stage2(ctx, config, model, images, on_log=keep)
    sizes = np.bincount(probs.argmax(1), minlength=view.n_clusters).tolist()
    record = {"run": args.run, "seed": args.seed, "rows": len(images), "set": update,
              "stage2_s": round(time.perf_counter() - start, 1), "predict": extra["predict"],
              "clusters_used": int(sum(s > 0 for s in sizes)), "cluster_sizes": sizes, "scores": scores,
              "history": rows}
    with OUT.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k not in ("history", "scores")}))


if __name__ == "__main__":
    main()
