"""A small real-photo defect data set built from photographs that installed packages ship on disk (nothing is
downloaded): three photographed surfaces, procedural crack and stain defects drawn on them with exact masks, one
product without any stain. It is the check set of the offline extractor (docs/offline-metrics.md): small (about
380 ``gan_train`` images), real backgrounds the procedural corpus never rendered, one empty product x defect cell.

Products (crops from one region of each photograph, random position, side and mirror):

- ``foliage``: the trees of scikit-learn's ``china.jpg``;
- ``petals``: the dahlia of scikit-learn's ``flower.jpg``;
- ``flag``: the flag behind Grace Hopper in matplotlib's ``sample_data/grace_hopper.jpg`` (no stain images).

The crops go through :func:`dtgan.data.importers.import_folders` (the paper's split per cell) as a user's folder
tree with a mask tree would; everything is seeded.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dtgan.data.defects import DEFECTS
from dtgan.data.importers import import_folders
from dtgan.data.splits import SplitOptions
from dtgan.data.vocab import NORMAL
from dtgan.errors import DataError


@dataclass(frozen=True)
class PhotoProduct:
    name: str
    package: str  # the package whose data files hold the photograph
    relative: str  # path of the photograph inside that package's data folder
    box: tuple[float, float, float, float]  # region crops come from: x0, y0, x1, y1 as fractions of the photo


PRODUCTS = (
    PhotoProduct("foliage", "sklearn", "datasets/images/china.jpg", (0.80, 0.45, 1.0, 1.0)),
    PhotoProduct("petals", "sklearn", "datasets/images/flower.jpg", (0.30, 0.22, 0.68, 0.78)),
    PhotoProduct("flag", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", (0.0, 0.0, 0.22, 0.75)),
)
DEFECT_TYPES = ("crack", "stain")
MISSING = ("flag", "stain")  # the product x defect cell with no image at all
COUNTS = {NORMAL: 200, "crack": 40, "stain": 35}
HOLDOUT_PER_CELL = 10
GAN_NORMAL_PER_PRODUCT = 80
BOLDNESS = 2.0  # as the CPU preset's benchmark: defects that survive 32 px


def photo_path(product: PhotoProduct) -> Path:
    """The photograph's file in its installed package; a one-line error when the package is missing."""
    try:
        module = __import__(product.package)
    except ImportError:
        raise DataError(
            f"photo set: product {product.name} needs the photograph {product.relative} of the package "
            f"{product.package}, which is not installed; install it (pip install {product.package})"
        ) from None
    path = Path(os.path.dirname(module.__file__)) / product.relative
    if product.package == "matplotlib":
        path = Path(module.get_data_path()) / product.relative.removeprefix("mpl-data/")
    if not path.is_file():
        raise DataError(f"photo set: {path} is missing from the installed {product.package}")
    return path


def crops(photo: np.ndarray, box, n: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 (n, side, side) gray crops of a random side (1-2x ``side``, at most the box) inside ``box``, mirrored
    at random, resized to ``side``."""
    h, w = photo.shape
    x0, y0, x1, y1 = int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)
    largest = min(x1 - x0, y1 - y0)
    out = np.empty((n, side, side), np.uint8)
    for i in range(n):
        crop_side = int(rng.integers(min(side, largest), min(2 * side, largest) + 1))
        x = int(rng.integers(x0, x1 - crop_side + 1))
        y = int(rng.integers(y0, y1 - crop_side + 1))
        tile = Image.fromarray(photo[y : y + crop_side, x : x + crop_side]).resize(
            (side, side), Image.LANCZOS
        )
        array = np.asarray(tile)
        out[i] = array[:, ::-1] if rng.random() < 0.5 else array
    return out


def draw_defects(images: np.ndarray, defect: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(images with the procedural ``defect`` drawn on them, uint8 masks 0/255)."""
    n, side, _ = images.shape
    delta = DEFECTS[defect](rng, n, side, BOLDNESS)
    painted = np.clip(images.astype(np.float32) / 255.0 + delta, 0.0, 1.0)
    return (painted * 255.0 + 0.5).astype(np.uint8), np.where(delta != 0, 255, 0).astype(np.uint8)


def write_tree(root: Path, mask_root: Path, side: int, seed: int) -> None:
    """ROOT/<product>/<defect>/<n>.png and MASKROOT/<product>/<defect>/<n>.png for every crop."""
    for p, product in enumerate(PRODUCTS):
        photo = np.asarray(Image.open(photo_path(product)).convert("L"))
        for d, defect in enumerate((NORMAL, *DEFECT_TYPES)):
            if (product.name, defect) == MISSING:
                continue
            rng = np.random.default_rng([seed, p, d])
            images = crops(photo, product.box, COUNTS[defect], side, rng)
            masks = None
            if defect != NORMAL:
                images, masks = draw_defects(images, defect, rng)
            folder = root / product.name / defect
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(images):
                Image.fromarray(image).save(folder / f"{i:04d}.png")
                if masks is not None:
                    mask_folder = mask_root / product.name / defect
                    mask_folder.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(masks[i]).save(mask_folder / f"{i:04d}.png")


def build_photo_set(out_path: str, size: int = 64, seed: int = 0) -> int:
    """Write the photo set to ``out_path`` (.parquet, atomically, by the folder importer); returns its rows."""
    with tempfile.TemporaryDirectory(prefix="dtgan-photos-") as tmp:
        root, mask_root = Path(tmp) / "images", Path(tmp) / "masks"
        write_tree(root, mask_root, size, seed)
        rows = import_folders(
            str(root),
            out_path,
            size,
            SplitOptions(HOLDOUT_PER_CELL, GAN_NORMAL_PER_PRODUCT, seed),
            list(DEFECT_TYPES),
            str(mask_root),
        )
    return len(rows)
