"""DEC's soft assignment and target distribution (methods.dec): known answers, and bit-for-bit the
values of the formulas LNSCC, IcicleGCN and the DEC baselines each wrote before they shared this one
(LNSCC's 1 / (1 + d^2) has another backward rounding: docs/architecture.md)."""
import torch

from clusterbench.methods import dec


def test_student_t_known_answer():
    z = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    centres = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    q = dec.student_t(dec.squared_distances(z, centres))
    # row 0: d^2 = 0, 1 -> 1, 1/2; row 1: d^2 = 9, 10 -> 1/10, 1/11
    expected = torch.tensor([[1.0, 0.5], [1 / 10, 1 / 11]])
    assert torch.allclose(q, expected / expected.sum(1, keepdim=True))
    # v = 3 degrees of freedom: (1 + d^2 / 3)^-2
    q3 = dec.student_t(torch.tensor([[0.0, 3.0]]), dof=3.0)
    assert torch.allclose(q3, torch.tensor([[1.0, 0.25]]) / 1.25)


def test_target_distribution_known_answer_and_empty_cluster():
    q = torch.tensor([[0.75, 0.25], [0.5, 0.5]])
    w = q ** 2 / q.sum(0)
    assert torch.allclose(dec.target_distribution(q), w / w.sum(1, keepdim=True))
    empty = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert torch.equal(dec.target_distribution(empty), empty)   # no 0/0: the empty column stays 0


def test_the_shared_formulas_equal_each_methods_former_one_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    z, centres = torch.randn(500, 16, generator=g) * 3, torch.randn(10, 16, generator=g) * 3
    lnscc_before = 1.0 / (1.0 + torch.cdist(z, centres) ** 2)
    lnscc_before = lnscc_before / lnscc_before.sum(dim=1, keepdim=True)
    assert torch.equal(dec.student_t(dec.squared_distances(z, centres)), lnscc_before)
    d2 = ((z.unsqueeze(1) - centres.unsqueeze(0)) ** 2).sum(2)
    for dof in (1.0, 2.5):
        iciclegcn_before = (1.0 + d2 / dof) ** (-(dof + 1.0) / 2.0)
        assert torch.equal(dec.student_t(d2, dof), iciclegcn_before / iciclegcn_before.sum(1, keepdim=True))
    q = dec.student_t(d2)
    weight = q ** 2 / q.sum(0)
    assert torch.equal(dec.target_distribution(q), weight / weight.sum(1, keepdim=True))
