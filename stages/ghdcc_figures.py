"""ghdcc-figures@<profile>: GHDCC's embedding map (Fig. 4), confusion matrix (Fig. 7) and lambda sweep (Fig. 6) as PNGs.

Reads the finished run folder data/<profile>/runs/<run>/ (embedding.npz: GCN1's features of the
first seed; predictions.npz) with its view's labels, and the lambda-sweep runs (--sweep: run
names or shell patterns, comma-separated; each run's lambda is its interpolation_lambda). Writes
<reports>/figures/ghdcc-embedding-<dataset>.png, ghdcc-confusion-<dataset>.png and
ghdcc-fig6-lambda.png, all three or none. Sweep runs not run yet are named on the figure with the
reason (reports/paper/specs/ghdcc.yaml's fig6 reason in the full profile).
"""
from clusterbench import threads  # noqa: F401  (first: pins BLAS/OpenMP threads)
import argparse  # noqa: E402
import fnmatch  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from clusterbench import config, io, resolve  # noqa: E402
from clusterbench.methods.ghdcc.figures import (PROJECTIONS, confusion_figure, embedding_figure,  # noqa: E402
                                        lambda_sweep_figure, write_all)

SPEC = Path("reports/paper/specs/ghdcc.yaml")
DEFAULT_SWEEP = {"full": "ghdcc-imagenet-dogs,ghdcc-lambda0?-imagenet-dogs",
                 "smoke": "smoke-ghdcc-cnn-fashion-mnist-test,smoke-ghdcc-lambda0?-cnn-fashion-mnist-test"}


def sweep_runs(params, patterns: str) -> list[str]:
    names = [n for n, r in params.train.items() if r.method == "ghdcc"]
    found: list[str] = []
    for pattern in filter(None, (p.strip() for p in patterns.split(","))):
        hits = fnmatch.filter(names, pattern)
        if not hits:
            raise config.ParamsError(f"--sweep {pattern!r}: no GHDCC train run of this profile matches")
        found += [h for h in hits if h not in found]
    return found


def run_lambda(params, name: str) -> float:
    """The run's interpolation_lambda, as the run is configured (methods.ghdcc + its overrides)."""
    return float(config.method_config(params, "train", name)[1].interpolation_lambda)


def not_run_reason(profile: str, name: str) -> str:
    """The spec's fig6 reason in the full profile (every row shares it), else how to run it."""
    if profile == "full" and SPEC.is_file():
        rows = (yaml.safe_load(SPEC.read_text()).get("tables", {}).get("fig6", {}).get("rows") or {})
        reasons = {row.get("reason") for row in rows.values() if isinstance(row, dict)} - {None}
        if len(reasons) == 1:
            return reasons.pop()
    return f"`dvc repro train@{name}` has not been run"


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("profile")
    ap.add_argument("--run", default=None, help="run name (default: the profile's GHDCC CPU row on fashion-mnist-test)")
    ap.add_argument("--sweep", default=None, help="lambda-sweep runs: names or patterns, comma-separated")
    ap.add_argument("--projection", default="umap", choices=PROJECTIONS)
    args = ap.parse_args()
    params = resolve.load_params("profiles", args.profile)
    run = args.run or ("ghdcc-cnn-fashion-mnist-test" if args.profile == "full"
                       else f"{args.profile}-ghdcc-cnn-fashion-mnist-test")
    if run not in params.train:
        raise config.ParamsError(f"no train run {run!r} in the {args.profile} profile")
    out_dir = Path(params.profiles[args.profile].reports) / "figures"
    run_dir = io.run_dir(args.profile, run)
    view = params.train[run].view
    dataset = params.views[view].dataset
    if not (run_dir / "embedding.npz").is_file():
        print(f"{run}: not run yet ({run_dir} has no embedding.npz); no GHDCC figures", file=sys.stderr)
        return
    sweep = []
    for name in sweep_runs(params, args.sweep or DEFAULT_SWEEP.get(args.profile, "")):
        rdir = io.run_dir(args.profile, name)
        sweep.append((run_lambda(params, name), rdir, io.view_path(args.profile, params.train[name].view), name))
    sweep.sort()
    reasons = {lam: not_run_reason(args.profile, name) for lam, _, _, name in sweep}
    sweep_datasets = sorted({params.views[params.train[name].view].dataset for *_, name in sweep})
    title = f"{run} ({dataset})"
    view_path = io.view_path(args.profile, view)
    figures = {
        out_dir / f"ghdcc-embedding-{dataset}.png":
            lambda out: embedding_figure(run_dir, view_path, out, projection=args.projection, title=title),
        out_dir / f"ghdcc-confusion-{dataset}.png": lambda out: confusion_figure(run_dir, view_path, out, title=title),
        out_dir / "ghdcc-fig6-lambda.png":
            lambda out: lambda_sweep_figure([(lam, rdir, vp) for lam, rdir, vp, _ in sweep], out, reason=reasons,
                                            title=f"GHDCC Fig. 6 ({args.profile}): interpolation λ on "
                                                  f"{', '.join(sweep_datasets) or 'no runs'}"),
    }
    for out, result in write_all(figures).items():
        extra = (f"plotted lambda {result['plotted']}, not run {result['missing']}" if "plotted" in result
                 else f"ACC {result['acc']:.3f}")
        print(f"{out}: {extra}")


if __name__ == "__main__":
    main()
