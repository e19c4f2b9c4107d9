"""knn@<view>: exact k-nearest-neighbour graph of a view (faiss) -> data/<profile>/graphs/<view>.npz."""
import argparse

from clusterbench import config, graphs, io
from clusterbench.embeddings import View


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("view")
    args = ap.parse_args()
    params = config.load()
    view_spec = params.views[args.view]
    k = max(params.model.k, view_spec.min_k)
    view = View.load(io.view_path(view_spec.profile, args.view))
    graph = graphs.knn(view.X, k)
    graph.save(io.graph_path(view_spec.profile, args.view))
    print(f"{args.view}: {graph.n} nodes, k={graph.k}, gpu={graphs.faiss_gpu_available()}")


if __name__ == "__main__":
    main()
