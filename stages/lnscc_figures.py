"""lnscc-figures@<profile>: LNSCC's Figure 1d and Figure 5 as PNGs, from a finished run folder.

Reads data/<profile>/runs/<run>/ (embedding.npz of the first seed, seed-*/progress.npz written
by the method) and writes <reports>/figures/lnscc-figure1d-<dataset>.png and
lnscc-figure5-<dataset>.png. A run that has not been executed is skipped with a message.
"""
import argparse
import sys
from pathlib import Path

from clusterbench import config, io
from clusterbench.methods.lnscc.figures import figure_embedding, figure_progress


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("profile")
    ap.add_argument("--run", default=None, help="run name (default: the profile's LNSCC run on mnist-sample10k)")
    args = ap.parse_args()
    params = config.load()
    if args.profile not in params.profiles:
        raise config.ParamsError(f"unknown profile {args.profile!r}; allowed: {', '.join(params.profiles)}")
    run = args.run or ("lnscc-mnist-sample10k" if args.profile == "full" else f"{args.profile}-lnscc-mnist-sample10k")
    if run not in params.train:
        raise config.ParamsError(f"no train run {run!r} in params.yaml")
    out_dir = Path(params.profiles[args.profile].reports) / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = io.run_dir(args.profile, run)
    dataset = params.views[params.train[run].view].dataset
    if not (run_dir / "embedding.npz").is_file():
        print(f"{run}: not run yet ({run_dir} has no embedding.npz); no LNSCC figures", file=sys.stderr)
        return
    title = f"{run} ({dataset})"
    print(figure_embedding(run_dir, out_dir / f"lnscc-figure1d-{dataset}.png", title))
    print(figure_progress(run_dir, out_dir / f"lnscc-figure5-{dataset}.png", title, seed=None))


if __name__ == "__main__":
    main()
