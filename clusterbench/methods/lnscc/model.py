"""The MLP encoder and DEC's Student-t cluster head.
"""
from __future__ import annotations

import numpy as np

from ..dec import squared_distances, student_t
from .config import Config


def build_model(in_dim: int, config: Config, n_clusters: int):
    import torch.nn as nn

    layers, width = [], in_dim
    for hidden in config.encoder_dims:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, config.embedding_dim))
    encoder = nn.Sequential(*layers)
    if config.head == "dec":
        return encoder, StudentTHead(n_clusters, config.embedding_dim)
    if config.head_hidden:
        head = nn.Sequential(nn.Linear(config.embedding_dim, config.head_hidden), nn.ReLU(),
                             nn.Linear(config.head_hidden, n_clusters), nn.Softmax(dim=1))
    else:
        head = nn.Sequential(nn.Linear(config.embedding_dim, n_clusters), nn.Softmax(dim=1))
    return encoder, head


def StudentTHead(n_clusters: int, dim: int):
    """DEC's soft assignment: U_ik = (1 + |Z_i - mu_k|^2)^-1 / sum_k' (...), centres mu as parameters
    (zeros until `set_centres`; U is then uniform and eq. 18 at eta = 0 gives them no gradient)."""
    import torch

    class StudentT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.centres = torch.nn.Parameter(torch.zeros(n_clusters, dim))

        def forward(self, z):
            return student_t(squared_distances(z, self.centres))

    return StudentT()


def set_centres(head, z: np.ndarray, n_clusters: int, seed: int) -> None:
    """DEC's start: the centres are k-means (10 restarts) on Z."""
    import torch
    from sklearn.cluster import KMeans

    centres = KMeans(n_clusters, n_init=10, random_state=seed).fit(z.astype(np.float64)).cluster_centers_
    with torch.no_grad():
        head.centres.copy_(torch.as_tensor(centres, dtype=head.centres.dtype, device=head.centres.device))
