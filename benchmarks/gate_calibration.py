"""Extra seeds of the smoke runs whose result moves with the CPU's instruction set (the gate's
chaotic runs), for ``python -m clusterbench.gate --calibrate ... --extra``.

Run from a checkout whose smoke views and graphs exist (after ``make smoke``); the runs are
executed exactly as ``dvc repro`` would (same settings, same code path), but with other seeds and
into a scratch folder, so no DVC output is touched. Prints progress to stderr and writes
``{run: {metric: [value per extra seed]}}``:

    python benchmarks/gate_calibration.py --seeds 2-9 --out benchmarks/gate-extra-seeds.json \\
        smoke-lnscc-digits smoke-lnscc-fashion-mnist-test ...

Under another instruction set, prefix the environment (e.g. ``ATEN_CPU_CAPABILITY=default
ONEDNN_MAX_CPU_ISA=SSE41``) and merge the outputs with ``--merge``.
"""
from clusterbench import threads  # noqa: F401  (first: pins BLAS/OpenMP threads)

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from clusterbench import config, gate, io, runs, scoring  # noqa: E402
from clusterbench.embeddings import View  # noqa: E402


def seed_list(text: str) -> list[int]:
    """'2-5,8,10-11' -> [2, 3, 4, 5, 8, 10, 11]"""
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def extra_seeds(names: list[str], seeds: list[int]) -> dict:
    params = config.load()
    out: dict[str, dict[str, list[float]]] = {}
    # Runs go to a scratch folder (removed afterwards), never into data/.
    with tempfile.TemporaryDirectory(prefix="gate-calibration-") as tmp:
        scratch = Path(tmp)
        original_run_dir = io.run_dir
        io.run_dir = lambda profile, name: scratch / profile / name
        try:
            for name in names:
                block = "train" if name in params.train else "baselines"
                run = getattr(params, block)[name]
                profile = params.profiles[run.profile]
                saved = list(profile.seeds)
                object.__setattr__(profile, "seeds", seeds)
                t0 = time.perf_counter()
                try:
                    runs.execute(params, block, name, progress=False)
                finally:
                    object.__setattr__(profile, "seeds", saved)
                view = View.load(io.view_path(run.profile, run.view))
                summary = scoring.score_run(io.run_dir(run.profile, name), view)
                out[name] = {m: v for m, v in summary["per_seed"].items() if m in gate.GATED_METRICS}
                print(f"{name}: seeds {seeds[0]}-{seeds[-1]} in {time.perf_counter() - t0:.0f} s: "
                      + ", ".join(f"{m} {sum(v) / len(v):.3f}" for m, v in out[name].items()), file=sys.stderr)
        finally:
            io.run_dir = original_run_dir
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*")
    ap.add_argument("--seeds", default="2-9")
    ap.add_argument("--out", required=True)
    ap.add_argument("--merge", nargs="*", default=[], help="JSON files of earlier calls to add to --out")
    ap.add_argument("--replace", action="store_true",
                    help="with --merge: a run in a later file replaces that run's values from the earlier files "
                         "(recalibrating some runs of benchmarks/gate-extra-seeds.json) instead of adding to them")
    args = ap.parse_args()
    data = extra_seeds(args.runs, seed_list(args.seeds)) if args.runs else {}
    for path in args.merge:
        for run, metrics in json.loads(Path(path).read_text()).items():
            if args.replace:
                data[run] = {}
            for metric, values in metrics.items():
                data.setdefault(run, {}).setdefault(metric, []).extend(values)
    Path(args.out).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
