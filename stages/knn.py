"""knn@<view>: exact k-nearest-neighbour graph of a view (faiss) -> data/<profile>/graphs/<view>.npz."""
from clusterbench import threads  # noqa: F401  (first: pins BLAS/OpenMP threads)
import argparse  # noqa: E402

from clusterbench import checks, config, graphs, io, resolve  # noqa: E402
from clusterbench.embeddings import View


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("view")
    args = ap.parse_args()
    settings = resolve.load_settings("knn", args.view)
    k, setting = settings["k"], settings["k_from"]
    view = View.load(io.view_path(settings["profile"], args.view))
    checks.check_view(view, args.view)
    graph = graphs.view_graph(view.X, k, label=f"view {args.view}", setting=setting)
    graph.save(io.graph_path(settings["profile"], args.view))
    print(f"{args.view}: {graph.n} nodes, k={graph.k}, gpu={graphs.faiss_gpu_available()}")


if __name__ == "__main__":
    main()
