"""baselines@<run>: a classic baseline on one view, over the profile's seeds."""
import os

# On a shared machine, OpenMP threads that busy-wait at barriers slow scikit-learn's and torch's
# small parallel loops down 10-50x when other processes hold the cores (measured on OPTICS and
# the deep baselines); passive waiting keeps the parallel speed-up without the stall. Must be set
# before any OpenMP runtime is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenBLAS threads spin the same way and have no passive mode: on the shared 2-core build
# machine two BLAS threads made k-means 10x slower and big products no faster. Export
# OPENBLAS_NUM_THREADS to use more on a machine of your own.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402

from clusterbench import config, runs  # noqa: E402


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    args = ap.parse_args()
    record = runs.execute(config.load(), "baselines", args.run)
    print(f"{args.run}: {len(record['per_seed'])} seeds, "
          f"{sum(s['wall_s'] for s in record['per_seed']):.1f} s")


if __name__ == "__main__":
    main()
