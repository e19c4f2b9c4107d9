"""Hi-LANDER's GNN (edge connectivity and node density heads), built when torch is needed.
"""
from __future__ import annotations

import numpy as np

from .config import Config
from .hierarchy import LevelGraph


def _torch_modules():
    import torch
    from torch import nn

    class GraphConvLayer(nn.Module):
        """h_i' = ReLU(W [h_i, sum_j a_ij h_j]), a_ij = s_ij / sum_j s_ij (the reference's GraphConvLayer)."""

        def __init__(self, d_in, d_out, dropout):
            super().__init__()
            self.mlp = nn.Linear(2 * d_in, d_out)
            self.dropout = dropout

        def forward(self, h_dst, h_nbr, w, mask):
            a = w * mask
            a = a / a.sum(1, keepdim=True).clamp_min(1e-12)
            agg = (a.unsqueeze(-1) * h_nbr).sum(1)
            out = torch.relu(self.mlp(torch.cat([h_dst, agg], 1)))
            return nn.functional.dropout(out, self.dropout, self.training)

    class GATLayer(nn.Module):
        """Graph attention over the incoming edges (no self edge), heads averaged, + bias, ReLU."""

        def __init__(self, d_in, d_out, dropout, heads):
            super().__init__()
            self.heads, self.d_out = heads, d_out
            self.fc = nn.Linear(d_in, heads * d_out, bias=False)
            self.att_src = nn.Parameter(torch.empty(heads, d_out))
            self.att_dst = nn.Parameter(torch.empty(heads, d_out))
            self.bias = nn.Parameter(torch.zeros(d_out))
            nn.init.xavier_normal_(self.fc.weight, gain=nn.init.calculate_gain("relu"))
            nn.init.xavier_normal_(self.att_src, gain=nn.init.calculate_gain("relu"))
            nn.init.xavier_normal_(self.att_dst, gain=nn.init.calculate_gain("relu"))
            self.dropout = dropout

        def forward(self, h_dst, h_nbr, w, mask):
            n, m, _ = h_nbr.shape
            z_dst = self.fc(h_dst).view(n, self.heads, self.d_out)
            z_nbr = self.fc(h_nbr).view(n, m, self.heads, self.d_out)
            e = (z_nbr * self.att_src).sum(-1) + (z_dst * self.att_dst).sum(-1).unsqueeze(1)  # (n, m, H)
            e = nn.functional.leaky_relu(e, 0.2).masked_fill(~mask.unsqueeze(-1), float("-inf"))
            alpha = torch.softmax(e, 1).nan_to_num(0.0)  # a node without edges aggregates nothing
            out = (alpha.unsqueeze(-1) * z_nbr).sum(1).mean(1) + self.bias
            return nn.functional.dropout(torch.relu(out), self.dropout, self.training)

    class Encoder(nn.Module):
        """num_conv conv layers; dims as the reference's LANDER (nhid, nhid, nhid/2, nhid/2)."""

        def __init__(self, d_in, hidden, num_conv, conv, heads, dropout):
            super().__init__()
            dims = [d_in, hidden, hidden, hidden // 2, hidden // 2][: num_conv + 1]
            make = (lambda a, b: GATLayer(a, b, dropout, heads)) if conv == "gat" else \
                (lambda a, b: GraphConvLayer(a, b, dropout))
            self.layers = nn.ModuleList(make(a, b) for a, b in zip(dims[:-1], dims[1:]))
            self.d_out = dims[-1]

        def forward(self, x, nbrs, w, mask, nodes):
            """Conv features of ``nodes`` (LongTensor); reads x of their num_conv-hop neighbourhood."""
            return self._embed(x, nbrs, w, mask, nodes, len(self.layers))

        def _embed(self, x, nbrs, w, mask, nodes, depth):
            if depth == 0:
                return x[nodes]
            need, inverse = torch.unique(torch.cat([nodes, nbrs[nodes].reshape(-1)]), return_inverse=True)
            h = self._embed(x, nbrs, w, mask, need, depth - 1)
            n = len(nodes)
            h_dst = h[inverse[:n]]
            h_nbr = h[inverse[n:]].view(n, nbrs.shape[1], -1)
            return self.layers[depth - 1](h_dst, h_nbr, w[nodes], mask[nodes])

    class LinkageNet(nn.Module):
        """Encoder + edge classifier; density from the linkage probabilities (joint model)."""

        def __init__(self, d_in, cfg):
            super().__init__()
            half = cfg.hidden // 2
            self.encoder = Encoder(d_in, cfg.hidden, cfg.num_conv, cfg.conv, cfg.gat_heads, cfg.dropout)
            self.src_mlp = nn.Linear(self.encoder.d_out, half)
            self.dst_mlp = nn.Linear(self.encoder.d_out, half)
            self.classifier = nn.Sequential(nn.PReLU(half), nn.Linear(half, half), nn.PReLU(half), nn.Linear(half, 2))

        def forward(self, x, nbrs, w, mask, nodes):
            """(edge logits (B, k-1, 2), predicted density (B,)) of the edges into ``nodes``."""
            need, inverse = torch.unique(torch.cat([nodes, nbrs[nodes].reshape(-1)]), return_inverse=True)
            h = self.encoder(x, nbrs, w, mask, need)
            b = len(nodes)
            h_dst = self.dst_mlp(h[inverse[:b]])
            h_src = self.src_mlp(h[inverse[b:]]).view(b, nbrs.shape[1], -1)
            pair = (h_src + h_dst.unsqueeze(1)).reshape(b * nbrs.shape[1], -1)  # PReLU: channels last
            logits = self.classifier(pair).view(b, nbrs.shape[1], 2)
            prob = torch.softmax(logits, -1)
            m = mask[nodes].float()
            msg = w[nodes] * (prob[..., 1] - prob[..., 0]) * m
            density = msg.sum(1) / m.sum(1).clamp_min(1.0)  # mean over the node's edges
            return logits, density

    class DensityNet(nn.Module):
        """The two-model baseline's density network: encoder + node regression head."""

        def __init__(self, d_in, cfg):
            super().__init__()
            half = cfg.hidden // 2
            self.encoder = Encoder(d_in, cfg.hidden, cfg.num_conv, cfg.conv, cfg.gat_heads, cfg.dropout)
            self.head = nn.Sequential(nn.Linear(self.encoder.d_out, half), nn.PReLU(half), nn.Linear(half, 1))

        def forward(self, x, nbrs, w, mask, nodes):
            return self.head(self.encoder(x, nbrs, w, mask, nodes)).squeeze(1)

    return LinkageNet, DensityNet


class Model:
    """Hi-LANDER's joint model, or the two-model baseline (``joint: false``)."""

    def __init__(self, d_in: int, cfg: Config, device: str):
        import torch

        LinkageNet, DensityNet = _torch_modules()
        self.cfg, self.device = cfg, device
        self.d_in = 2 * d_in if cfg.use_cluster_feat else d_in
        self.linkage = LinkageNet(self.d_in, cfg).to(device)
        self.density = None if cfg.joint else DensityNet(self.d_in, cfg).to(device)
        self.torch = torch

    def parameters(self):
        yield from self.linkage.parameters()
        if self.density is not None:
            yield from self.density.parameters()

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def train(self, mode: bool = True) -> None:
        self.linkage.train(mode)
        if self.density is not None:
            self.density.train(mode)

    def tensors(self, g: LevelGraph):
        t = self.torch
        x = np.concatenate([g.features, g.cluster_features], 1) if self.cfg.use_cluster_feat else g.features
        return (t.as_tensor(x, dtype=t.float32, device=self.device), t.as_tensor(g.nbrs, device=self.device),
                t.as_tensor(g.sims, device=self.device), t.as_tensor(g.valid, device=self.device))

    def predict(self, tensors, nodes):
        """(edge logits, node density) for the edges into ``nodes``."""
        logits, density = self.linkage(*tensors, nodes)
        if self.density is not None:
            density = self.density(*tensors, nodes)
        return logits, density
