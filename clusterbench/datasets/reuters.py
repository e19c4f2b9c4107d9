"""REUTERS-10K: DEC's recipe (Xie, Girshick & Farhadi 2016) on the RCV1-v2 token files.

DEC's released script (piiswrong/dec, ``dec/dec.py``: ``make_reuters_data`` and
``make_reuters_idf_data``) does, and this module reproduces step by step:

1. Read ``rcv1-v2.topics.qrels``; keep the topics CCAT, GCAT, MCAT, ECAT (labels 0..3 in that
   order). A document tagged with two or more of these four root topics is dropped; a document
   with exactly one keeps it as its label (documents with none never enter). DEC's paper
   reports 685,071 such documents out of RCV1-v2's 804,414.
2. Read the five ``lyrl2004_tokens_*.dat`` files in the order test_pt0..pt3, train; a
   document's text is its token lines joined as they are.
3. ``CountVectorizer(max_features=2000)``: default tokenisation (lower-case, tokens of 2+ word
   characters), the 2000 stems with the largest total count over those documents, columns in
   alphabetical order.
4. ``TfidfTransformer(norm='l2', sublinear_tf=True)`` fitted on all of them (smooth idf), then
   each row times sqrt(2000).
5. ``np.random.seed(1234); p = np.random.permutation(N)``; REUTERS-10K is the first 10,000
   rows of the permuted matrix (variant ``dec``).

Variant ``idec`` is the re-implementation in XifengGuo's DEC-keras / IDEC code
(``datasets.make_reuters_data``), which LNSCC cites for REUTERS-10K: the same features, but the
*first* 10,000 documents in file order, then shuffled with seed 1234.

We never densify the 685,071 x 2000 matrix (DEC did, 11 GB): two streaming passes give the
same numbers (pass 1: corpus counts -> vocabulary; pass 2: document frequencies, and counts of
the selected documents only).
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Mapping

import numpy as np

from .base import SPLIT_TEST, SPLIT_TRAIN, DatasetArrays, DatasetError, progress
from .parsers import iter_rcv1_tokens, read_rcv1_qrels

ROOT_TOPICS = ("CCAT", "GCAT", "MCAT", "ECAT")
TOKEN_FILES = ("lyrl2004_tokens_test_pt0.dat.gz", "lyrl2004_tokens_test_pt1.dat.gz",
               "lyrl2004_tokens_test_pt2.dat.gz", "lyrl2004_tokens_test_pt3.dat.gz",
               "lyrl2004_tokens_train.dat.gz")
TRAIN_FILE = "lyrl2004_tokens_train.dat.gz"
QRELS_FILE = "rcv1-v2.topics.qrels.gz"
TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's CountVectorizer default
VARIANTS = ("dec", "idec")


def single_root_labels(qrels: Mapping[int, list[str]]) -> dict[int, int]:
    """DEC's rule: keep documents with exactly one of the four root topics, labelled by it."""
    labels = {}
    for did, topics in qrels.items():
        roots = [t for t in topics if t in ROOT_TOPICS]
        if len(roots) == 1:
            labels[did] = ROOT_TOPICS.index(roots[0])
    return labels


def _tokens(text: str) -> list[str]:
    return TOKEN_PATTERN.findall(text.lower())


def select_vocabulary(term_counts: Counter, max_features: int) -> tuple[list[str], bool]:
    """scikit-learn's max_features rule, and whether a tie straddles the cut.

    The vocabulary is sorted alphabetically, the ``max_features`` largest counts are taken with
    ``(-counts).argsort()[:max_features]`` exactly as CountVectorizer does, and the kept words
    stay in alphabetical order. With a tie at the cut, which tied words survive depends on
    numpy's sort; the flag records it.
    """
    words = sorted(term_counts)
    counts = np.asarray([term_counts[w] for w in words], dtype=np.float64)
    if len(words) <= max_features:
        return words, False
    order = (-counts).argsort()
    kept = np.sort(order[:max_features])
    cut = counts[order[max_features - 1]]
    tie = bool(counts[order[max_features]] == cut)
    return [words[i] for i in kept], tie


def tfidf_rows(counts: np.ndarray, df: np.ndarray, n_docs: int) -> np.ndarray:
    """TfidfTransformer(norm='l2', sublinear_tf=True, smooth_idf=True) rows, times sqrt(D)."""
    tf = counts.astype(np.float64).copy()
    nz = tf > 0
    tf[nz] = 1.0 + np.log(tf[nz])
    idf = np.log((1.0 + n_docs) / (1.0 + df.astype(np.float64))) + 1.0
    x = tf * idf
    norms = np.sqrt((x * x).sum(axis=1, keepdims=True))
    x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return x * np.sqrt(x.shape[1])


def reuters_builder(variant: str = "dec", n_docs: int = 10000, max_features: int = 2000, seed: int = 1234):
    """A DatasetSpec.build for REUTERS-10K; ``variant`` is ``dec`` or ``idec`` (see module doc)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown REUTERS variant {variant!r}; allowed: {', '.join(VARIANTS)}")

    def build(paths: Mapping[str, Path]) -> DatasetArrays:
        label_of = single_root_labels(read_rcv1_qrels(paths[QRELS_FILE]))

        # Pass 1: which documents, in DEC's order, and the corpus counts of every stem.
        kept_ids: list[int] = []
        from_train: list[bool] = []
        term_counts: Counter = Counter()
        n_documents = 0
        for name in TOKEN_FILES:
            for did, text in progress(iter_rcv1_tokens(paths[name]), desc=f"{name} (pass 1/2)", unit="doc"):
                n_documents += 1
                if did in label_of:
                    kept_ids.append(did)
                    from_train.append(name == TRAIN_FILE)
                    term_counts.update(_tokens(text))
        if len(kept_ids) != len(label_of):
            raise DatasetError(f"REUTERS: the qrels name {len(label_of)} single-root-topic documents but the token "
                               f"files hold {len(kept_ids)} of them (DEC's script asserts they are equal)")
        vocabulary, tie_at_cut = select_vocabulary(term_counts, max_features)
        del term_counts
        n_kept = len(kept_ids)

        # Which rows form the subset, in the order DEC (or IDEC) stores them.
        rng = np.random.RandomState(seed)  # == np.random.seed(seed) followed by np.random.permutation
        if variant == "dec":
            chosen = rng.permutation(n_kept)[:n_docs]
        else:
            first = np.arange(min(n_docs, n_kept))
            chosen = first[rng.permutation(len(first))]
        row_of = {int(doc): row for row, doc in enumerate(chosen)}

        # Pass 2: document frequencies over all kept documents; counts of the chosen ones.
        column = {w: j for j, w in enumerate(vocabulary)}
        width = len(vocabulary)
        df = np.zeros(width, dtype=np.int64)
        counts = np.zeros((len(chosen), width), dtype=np.float64)
        k = 0
        for name in TOKEN_FILES:
            for did, text in progress(iter_rcv1_tokens(paths[name]), desc=f"{name} (pass 2/2)", unit="doc"):
                if did not in label_of:
                    continue
                cols = [column[t] for t in _tokens(text) if t in column]
                if cols:
                    c = np.bincount(cols, minlength=width)
                    df += c > 0
                    if k in row_of:
                        counts[row_of[k]] = c
                k += 1

        x = tfidf_rows(counts, df, n_kept).astype(np.float32)
        y = np.asarray([label_of[kept_ids[i]] for i in chosen], dtype=np.int64)
        split = np.where(np.asarray(from_train)[chosen], SPLIT_TRAIN, SPLIT_TEST).astype(np.uint8)
        full_counts = np.bincount([label_of[d] for d in kept_ids], minlength=len(ROOT_TOPICS))
        info = {
            "recipe": f"REUTERS-10K, variant {variant!r} (see clusterbench/datasets/reuters.py)",
            "n_documents": n_documents,
            "n_single_root_topic": n_kept,
            "class_counts_single_root_topic": dict(zip(ROOT_TOPICS, full_counts.tolist())),
            "max_features": max_features,
            "seed": seed,
            "tie_at_vocabulary_cut": tie_at_cut,
            "vocabulary": vocabulary,
        }
        rows = "\n".join(f"{r}\t{kept_ids[i]}\t{ROOT_TOPICS[label_of[kept_ids[i]]]}" for r, i in enumerate(chosen))
        return DatasetArrays(x, y, split, list(ROOT_TOPICS), info=info,
                             extra_files={"documents.tsv": "row\tdocid\ttopic\n" + rows + "\n"})

    return build
