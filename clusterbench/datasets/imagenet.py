"""ImageNet-10 and ImageNet-Dogs, assembled from the user's own ImageNet (ILSVRC2012) train folder.

ImageNet cannot be downloaded without an account, so these subsets are built from a local copy:
``data.imagenet_dir`` in params.yaml or ``$CLUSTERBENCH_IMAGENET_DIR``. The class lists are
those of DAC (Chang et al. 2017) as released with Contrastive Clustering
(github.com/Yunfan-Li/Contrastive-Clustering, ``datasets/ImageNet-10.txt`` and
``datasets/ImageNet-dogs.txt``), which IcicleGCN's code uses too: all ILSVRC2012 train images of
those classes (1,300 each: 13,000 and 19,500). Labels follow the lists' order, which is sorted,
i.e. torchvision ImageFolder's order.

Images are resized to 96 x 96 (shorter side to 96, bicubic, then the central square), the size
IcicleGCN's paper states (after DAC). CC's and IcicleGCN's released code instead feed the
full-size JPEGs to ``RandomResizedCrop(224)``; see docs/datasets.md.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

import numpy as np

from .base import SPLIT_TRAIN, DatasetArrays, DatasetError, LocalSource
from .parsers import decode_images

IMAGENET_SOURCE = LocalSource(
    key="imagenet", param="data.imagenet_dir", env="CLUSTERBENCH_IMAGENET_DIR",
    layout=("The folder must be the ILSVRC2012 train folder (or its parent holding train/): one sub-folder per "
            "class named by its WordNet id, with that class's images, e.g. <imagenet_dir>/n02085936/"
            "n02085936_10006.JPEG. ILSVRC2012_img_train.tar holds one tar per class: extract each into the "
            "folder of its name. A folder holding only the needed classes (as CC's datasets/imagenet-10/) works "
            "too."))
IMAGE_SIZE = 96
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")

IMAGENET10_WNIDS = {
    "n02056570": "king penguin", "n02085936": "Maltese dog", "n02128757": "snow leopard",
    "n02690373": "airliner", "n02692877": "airship", "n03095699": "container ship",
    "n04254680": "soccer ball", "n04285008": "sports car", "n04467665": "trailer truck",
    "n07747607": "orange",
}
IMAGENET_DOGS_WNIDS = {
    "n02085936": "Maltese dog", "n02086646": "Blenheim spaniel", "n02088238": "basset",
    "n02091467": "Norwegian elkhound", "n02097130": "giant schnauzer", "n02099601": "golden retriever",
    "n02101388": "Brittany spaniel", "n02101556": "clumber", "n02102177": "Welsh springer spaniel",
    "n02105056": "groenendael", "n02105412": "kelpie", "n02105855": "Shetland sheepdog",
    "n02107142": "Doberman", "n02110958": "pug", "n02112137": "chow",
}


def class_folder_root(imagenet_dir: Path, wnids: list[str]) -> Path:
    """The folder whose sub-folders are the classes: ``imagenet_dir`` itself or its ``train/``."""
    for root in (imagenet_dir, imagenet_dir / "train"):
        if any((root / w).is_dir() for w in wnids):
            missing = [w for w in wnids if not (root / w).is_dir()]
            if missing:
                raise DatasetError(f"{root} lacks the class folders {', '.join(missing)}. {IMAGENET_SOURCE.layout}")
            return root
    raise DatasetError(f"{imagenet_dir} holds none of the class folders {', '.join(wnids[:3])}, ... "
                       f"{IMAGENET_SOURCE.layout}")


def list_class_images(root: Path, wnids: list[str]) -> list[tuple[str, int]]:
    """(path relative to root, label) for every image, classes in list order, files sorted by name."""
    items = []
    for label, wnid in enumerate(wnids):
        files = sorted(p.name for p in (root / wnid).iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DatasetError(f"{root / wnid} holds no images. {IMAGENET_SOURCE.layout}")
        items += [(f"{wnid}/{name}", label) for name in files]
    return items


def imagenet_subset_builder(classes: Mapping[str, str], size: int = IMAGE_SIZE):
    wnids = list(classes)
    if wnids != sorted(wnids):
        raise ValueError("class lists are kept sorted, as ImageFolder orders them")

    def build(paths: Mapping[str, Path]) -> DatasetArrays:
        root = class_folder_root(Path(paths[IMAGENET_SOURCE.key]), wnids)
        items = list_class_images(root, wnids)
        digests: list[str] = []

        def blobs():
            for row, (rel, _) in enumerate(items):
                data = (root / rel).read_bytes()
                digests.append(hashlib.sha256(data).hexdigest())
                yield row, data

        x = decode_images(blobs(), len(items), size, desc=f"ImageNet subset ({len(wnids)} classes)")
        y = np.asarray([label for _, label in items], dtype=np.int64)
        listing = "".join(f"{rel}\t{label}\t{wnids[label]}\t{digest}\n"
                          for (rel, label), digest in zip(items, digests))
        info = {"image_size": size,  # not the folder's path: the manifest depends on content only
                "resize": "shorter side to size (bicubic, antialiased), central square crop",
                "per_class_counts": dict(zip(wnids, np.bincount(y, minlength=len(wnids)).tolist())),
                "files_tsv_sha256": hashlib.sha256(("path\tlabel\twnid\tsha256\n" + listing).encode()).hexdigest()}
        return DatasetArrays(x, y, np.full(len(y), SPLIT_TRAIN, np.uint8),
                             [f"{w} {classes[w]}" for w in wnids], info=info,
                             extra_files={"files.tsv": "path\tlabel\twnid\tsha256\n" + listing})

    return build
