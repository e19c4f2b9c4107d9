"""Tiny-ImageNet: registry entry (URL, md5, 200 classes) and the builder on a hand-made zip."""
import io
import zipfile

import numpy as np
import pytest

from clusterbench.datasets import REGISTRY
from clusterbench.datasets import registry as R


def test_registry_entry():
    spec = REGISTRY["tiny-imagenet"]
    assert (spec.n_samples, spec.n_classes, spec.split, spec.modality) == (100000, 200, "train", "image")
    (f,) = spec.files
    assert f.urls == ("http://cs231n.stanford.edu/tiny-imagenet-200.zip",)
    assert f.md5 == "90528d7ca1a48142e341f4ef8d21d0de"


def _jpeg(value):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), value, np.uint8)).save(buf, "JPEG", quality=100)
    return buf.getvalue()


def _zip(tmp_path, wnids, per_class, extra=()):
    path = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tiny-imagenet-200/wnids.txt", "\n".join(wnids) + "\n")
        for c, w in enumerate(wnids):
            for i in range(per_class):
                zf.writestr(f"tiny-imagenet-200/train/{w}/images/{w}_{i}.JPEG", _jpeg(40 * c + 10 * i))
            zf.writestr(f"tiny-imagenet-200/train/{w}/{w}_boxes.txt", "")
        zf.writestr("tiny-imagenet-200/val/images/val_0.JPEG", _jpeg(255))
        for name in extra:
            zf.writestr(name, _jpeg(0))
    return path


def test_builder_reads_the_train_split_in_imagefolder_order(tmp_path):
    wnids = ["n02000002", "n01000001", "n03000003"]  # wnids.txt is not sorted; labels follow the sorted ids
    path = _zip(tmp_path, wnids, per_class=2)
    arrays = R.tiny_imagenet_builder(3, 2)({"tiny-imagenet-200.zip": path})
    assert arrays.X.shape == (6, 64, 64, 3)
    assert arrays.class_names == sorted(wnids)
    np.testing.assert_array_equal(arrays.y, [0, 0, 1, 1, 2, 2])
    # n01000001 was the second class written (value 40 + 10 i)
    assert abs(int(arrays.X[0].mean()) - 40) <= 2 and abs(int(arrays.X[1].mean()) - 50) <= 2
    assert arrays.info["split_counts"] == {"train": 6}


def test_builder_checks_the_counts(tmp_path):
    path = _zip(tmp_path, ["n01000001", "n02000002"], per_class=2)
    with pytest.raises(ValueError, match="expected 2 and 6"):
        R.tiny_imagenet_builder(2, 3)({"tiny-imagenet-200.zip": path})
