"""Time training steps of CC, IcicleGCN's stage 1 and GHDCC and scale them to epochs (for docs/methods/cc.md,
docs/methods/iciclegcn.md, docs/methods/ghdcc.md and the not-run reasons). Random pixels: only the time matters.

One step = augment two views of a batch, forward, loss, backward, Adam update (the real loss
functions of clusterbench.methods.cc / iciclegcn). The median of ``--steps`` steps after one
warm-up step is reported, with the epoch time (steps per epoch = N // batch) and the time of
``--epochs`` epochs. Prints one JSON line per setting.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/cc_step_time.py --method cc --backbone resnet34 --size 224 \\
        --batch 8 --steps 3 --n 13000 --paper-batch 256
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/cc_step_time.py --method ghdcc --backbone resnet34 --size 64 \
        --source-size 96 --batch 16 --steps 3 --n 13000 --paper-batch 128 --epochs 500

A GHDCC step forwards three views (two augmentations and their interpolation) and builds the
batch graph, so its per-image time is per *image of the batch*, as CC's.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=["cc", "iciclegcn", "ghdcc"], default="cc")
    ap.add_argument("--backbone", default="resnet34")
    ap.add_argument("--size", type=int, default=224, help="training image side (after the crop)")
    ap.add_argument("--source-size", type=int, default=None, help="stored image side (default: --size)")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8, help="batch timed here")
    ap.add_argument("--paper-batch", type=int, default=None, help="batch the epoch estimate assumes (linear scaling)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--n", type=int, default=10000, help="images per epoch")
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--clusters", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (bfloat16 autocast on cuda, as training)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from clusterbench.methods import cc, contrastive, ghdcc, iciclegcn

    torch.manual_seed(0)
    if args.method == "cc":
        config = cc.Config(backbone=args.backbone, image_size=args.size, batch_size=args.batch)
        model, loss_fn = cc.CCNetwork(args.backbone, 128, args.clusters), cc.cc_loss(config)
    elif args.method == "ghdcc":
        config = ghdcc.Config(backbone=args.backbone, image_size=args.size, batch_size=args.batch)
        model, loss_fn = ghdcc.model.GHDCCNetwork(config, args.clusters), ghdcc.losses.ghdcc_loss(config)
    else:
        config = iciclegcn.Config(backbone=args.backbone, image_size=args.size, batch_size=args.batch)
        model, loss_fn = iciclegcn.model.Stage1Network(config, args.clusters), iciclegcn.model.stage1_loss(config)
    device = torch.device(args.device)
    model = model.to(device)
    src = args.source_size or args.size
    images = torch.rand(args.batch, args.channels, src, src, device=device)
    spec = config.augment_spec(src)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(0)
    times = []
    for step in range(args.steps + 1):
        t0 = time.perf_counter()
        xa, xb = contrastive.augment(images, spec, generator), contrastive.augment(images, spec, generator)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss, _ = loss_fn(model, xa, xb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    per_image = step_s / args.batch
    batch = args.paper_batch or args.batch
    epoch_s = per_image * (args.n // batch) * batch
    print(json.dumps({"method": args.method, "backbone": args.backbone, "size": args.size, "batch_timed": args.batch,
                      "threads": args.threads, "device": args.device, "step_s": round(step_s, 3), "steps_s": [round(t, 3) for t in times],
                      "s_per_image": round(per_image, 4), "n": args.n, "batch_assumed": batch,
                      "epoch_cpu_h": round(epoch_s / 3600, 3),
                      f"epochs{args.epochs}_cpu_h": round(epoch_s * args.epochs / 3600, 1),
                      "cpu": platform.processor() or platform.machine()}))


if __name__ == "__main__":
    main()
