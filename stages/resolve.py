"""resolve: validate params.yaml and runs.yaml, write each stage's settings -> data/resolved/."""
from clusterbench import threads  # noqa: F401  (first: pins BLAS/OpenMP threads)
from clusterbench import config, resolve


@config.main_guard
def main() -> None:
    resolve.main()


if __name__ == "__main__":
    main()
