"""ConstellationNet (Gao & Lin): kNN-graph GNNs clustered with DMoN, and a supervised CNN-GNN.

``unsupervised`` (method ``constellationnet``): GCN / GAT / GIN / SuperGAT + DMoN pooling on the
kNN graph of the input, node features raw or embedded (Tables 3, 4, 5).
``supervised`` (method ``constellationnet-supervised``): CNN (or frozen ConvNeXt) + 5-layer GCN,
with graph-augmented prediction of held-out rows (Table 2).
Design notes and differences from the authors' notebooks: docs/methods/constellationnet.md.
"""
