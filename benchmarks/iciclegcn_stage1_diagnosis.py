"""IcicleGCN stage 1 against CC at the same budget, on a development set in no paper table.

Why (issue 21): the CPU row's stage-1 head (15 epochs, Adam 1e-4, batch 128) scored half of CC's
(20 epochs, Adam 3e-4, batch 256) on fashion-mnist-test. This script trains stage 1 in its
variants at one budget (epochs, batch, learning rate) on a fixed random subset of
Fashion-MNIST's *train* split (Debian's dataset-fashion-mnist; the paper tables use the test
split or none of Fashion-MNIST) with the small CNN at 28 x 28, and records after every epoch:

- label-free health: the loss parts, the cluster head's clusters used, its mean top
  probability, the entropy of its mean assignment, the backbone features' mean norm, and the
  gradient norm each loss part sends into the backbone (one fixed batch, eval mode, so the
  training trajectory is the same as without the probe);
- scores on the development labels: ACC / NMI of the head's argmax and NMI of k-means on the
  backbone features (is the backbone or the head worse?).

Variants are IcicleGCN ``Config`` overrides (``--set``): ``{"cluster_head": "mlp",
"use_reconstruction_loss": false}`` is CC's loss on the same network code (Table 5's "without
GCNs and AE"); ``{"use_reconstruction_loss": false}`` is the auto-encoder head without L_re.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/iciclegcn_stage1_diagnosis.py --name cc \
        --epochs 20 --lr 3e-4 --set '{"cluster_head": "mlp", "use_reconstruction_loss": false}'

Rows are appended to benchmarks/iciclegcn-stage1-diagnosis.jsonl.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from clusterbench import metrics
from clusterbench.datasets.parsers import read_idx
from clusterbench.methods import RunContext, contrastive, iciclegcn
from clusterbench.methods.cc import forward_all

OUT = Path(__file__).with_name("iciclegcn-stage1-diagnosis.jsonl")
FASHION = Path("/usr/share/datasets/fashion-mnist")


def dev_subset(rows: int, seed: int = 12345) -> tuple[torch.Tensor, np.ndarray]:
    """A fixed random subset of Fashion-MNIST's train split: (N, 1, 28, 28) in [0, 1], labels."""
    x = read_idx(FASHION / "train-images-idx3-ubyte.gz")
    y = read_idx(FASHION / "train-labels-idx1-ubyte.gz").astype(np.int64)
    pick = np.sort(np.random.default_rng(seed).choice(len(x), rows, replace=False))
    images = torch.from_numpy(x[pick].astype(np.float32)[:, None] / 255.0)
    return images, y[pick]


def backbone_grad_norms(model, config, images: torch.Tensor) -> dict:
    """Norm of the gradient each stage-1 loss part sends into the backbone, on one fixed batch
    (fixed augmentation draw, eval mode: the run's trajectory is untouched)."""
    model.eval()
    gen = torch.Generator().manual_seed(0)
    spec = config.augment_spec(images.shape[-1])
    xa, xb = contrastive.augment(images, spec, gen), contrastive.augment(images, spec, gen)
    out = {}
    for part in ("instance", "cluster", "reconstruction"):
        flags = {"use_instance_loss": part == "instance", "use_cluster_loss": part == "cluster",
                 "use_reconstruction_loss": part == "reconstruction"}
        if part == "reconstruction" and not hasattr(model, "autoencoder"):
            continue
        if not getattr(config, f"use_{part}_loss"):
            continue
        loss, _ = iciclegcn.model.stage1_loss(config.model_copy(update=flags))(model, xa, xb)
        model.zero_grad(set_to_none=True)
        loss.backward()
        out[f"grad_{part}"] = round(float(torch.sqrt(sum((p.grad ** 2).sum() for p in model.backbone.parameters()
                                                         if p.grad is not None))), 6)
    model.zero_grad(set_to_none=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True, help="label of the variant in the output")
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", default="{}", help="IcicleGCN Config overrides as JSON")
    ap.add_argument("--save", default=None, help="write the trained stage-1 weights here (for stage-2 runs)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from sklearn.cluster import KMeans

    images, labels = dev_subset(args.rows)
    update = json.loads(args.set)
    config = iciclegcn.Config(backbone="cnn", image_size=None, epochs=args.epochs, batch_size=args.batch, lr=args.lr,
                              stage2=False, keep_checkpoints=[], checkpoint_every=0, **update)
    probe = images[:128]
    model_box = {}
    rows: list[dict] = []

    def on_epoch(row: dict) -> None:
        model = model_box["model"]
        model.eval()
        with torch.no_grad():
            h, probs = forward_all(lambda x: (model.backbone(x), model(x)[2]), images, None, 512, "cpu")
        pred = probs.argmax(1).numpy()
        feats = h.numpy()
        km = KMeans(10, n_init=3, random_state=0).fit_predict(feats)
        mean_assign = probs.mean(0).clamp_min(1e-12)
        health = {"clusters_used": int(len(np.unique(pred))), "mean_top_prob": round(float(probs.max(1).values.mean()), 4),
                  "mean_assign_entropy": round(float(-(mean_assign * mean_assign.log()).sum()), 4),
                  "feature_norm": round(float(h.norm(dim=1).mean()), 4),
                  **backbone_grad_norms(model, config, probe)}
        score = {"head_acc": round(metrics.hungarian_accuracy(labels, pred), 4),
                 "head_nmi": round(metrics.nmi(labels, pred), 4), "kmeans_feat_nmi": round(metrics.nmi(labels, km), 4)}
        full = {**row, **health, **score}
        rows.append(full)
        print(json.dumps(full), flush=True)

    ctx = RunContext(view=None, graph=None, seed=args.seed, n_clusters=10, progress=False, log=on_epoch)
    torch.manual_seed(ctx.seed)
    model = iciclegcn.model.Stage1Network(config, 10)
    model_box["model"] = model
    trainer = iciclegcn.training.make_trainer(config, ctx, model, iciclegcn.model.stage1_loss(config), images.shape[-1], "stage1",
                                     {})
    start = time.perf_counter()
    trainer.fit(images)
    if args.save:
        torch.save({"model": model.state_dict(), "config": config.model_dump(), "rows": args.rows}, args.save)
    record = {"name": args.name, "rows": args.rows, "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
              "seed": args.seed, "set": update, "wall_s": round(time.perf_counter() - start, 1), "history": rows}
    with OUT.open("a") as f:
        f.write(json.dumps(record) + "\n")
    last = rows[-1]
    print(json.dumps({"name": args.name, **{k: last[k] for k in ("head_acc", "head_nmi", "kmeans_feat_nmi",
                                                                  "clusters_used")}}))


if __name__ == "__main__":
    main()
