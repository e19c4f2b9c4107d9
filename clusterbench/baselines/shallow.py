"""Shallow baselines from scikit-learn, each a thin adapter to the common interface."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from ..methods import MethodConfig, Result, RunContext


class KMeansConfig(MethodConfig):
    n_init: int = Field(10, ge=1)
    max_iter: int = Field(300, ge=1)
    init: Literal["k-means++", "random"] = "k-means++"


@dataclass(frozen=True)
class KMeansBaseline:
    TASK = "clustering"
    Config = KMeansConfig

    def fit_predict(self, ctx: RunContext, config: KMeansConfig) -> Result:
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=ctx.n_clusters, n_init=config.n_init, max_iter=config.max_iter,
                       init=config.init, random_state=ctx.seed)
        labels = model.fit_predict(ctx.view.X)
        return Result(labels=labels, extra={"inertia": float(model.inertia_), "n_iter": int(model.n_iter_)})


KMEANS = KMeansBaseline()
