"""Export synthetic defects for the user's own pipeline: ``DIR/<product>/<defect>/*.png`` + ``manifest.csv``
(the layout ``dtgan data import folders`` reads), or one Parquet file of the platform's format with
``source=synthetic``."""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from PIL import Image

from dtgan.config.evaluation import EvaluationConfig
from dtgan.data.vocab import Vocab
from dtgan.errors import DataError
from dtgan.evaluation.protocol import cell_seed
from dtgan.evaluation.synthesis import pick_references, synthesize
from dtgan.keys import safe_name
from dtgan.names import check_distinct_safe_names, check_product_names, injective_file_stems
from dtgan.utils.atomic import atomic_path, write_bytes_atomic

log = logging.getLogger(__name__)

ExportGuidance = Literal["latent", "reference", "mix"]
MANIFEST_FILE = "manifest.csv"
MANIFEST_COLUMNS = ("file", "product", "defect", "source_id", "guidance", "seed", "z_index", "reference_id")
PARQUET_FILE = "synthetic.parquet"


@dataclass(frozen=True)
class ExportResult:
    out_path: Path  # the folder (folders format) or the Parquet file
    images: int
    images_per_s: float


def png_bytes(image_uint8: torch.Tensor) -> bytes:
    """(3, H, W) uint8 -> PNG bytes; 8-bit gray when the three channels are equal."""
    gray = bool((image_uint8[0] == image_uint8[1]).all() and (image_uint8[0] == image_uint8[2]).all())
    array = image_uint8[0].numpy() if gray else image_uint8.permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array, mode="L" if gray else "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def select_names(
    requested: list[str] | None, available: tuple[str, ...], what: str, option: str
) -> list[str]:
    """The requested products/defects (all when None), each checked against the data."""
    if requested is None:
        return list(available)
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise DataError(
            f"{what} {', '.join(map(repr, unknown))} not in the data; {option} takes: {', '.join(available)}"
        )
    return list(requested)


def _guidance_of(k: int, guidance: ExportGuidance) -> str:
    """Mix alternates latent (even k) and reference (odd k): half of each for an even --per-source."""
    if guidance != "mix":
        return guidance
    return "latent" if k % 2 == 0 else "reference"


def check_output(out: Path, fmt: Literal["folders", "parquet"]) -> None:
    """A one-line error before any image is generated when ``--out`` cannot take the output."""
    parquet_file = fmt == "parquet" and out.suffix == ".parquet"
    if parquet_file and out.is_dir():
        raise DataError(
            f"--out {out}: is a folder; name a .parquet file, or a folder without the .parquet suffix"
        )
    if not parquet_file and out.exists() and not out.is_dir():
        raise DataError(
            f"--out {out}: exists and is not a folder; --format {fmt} writes into a folder (pick a new name)"
        )


def export_samples(
    nets,
    data,
    cfg: EvaluationConfig,
    out: str | Path,
    guidance: ExportGuidance,
    per_source: int,
    products: list[str] | None = None,
    defects: list[str] | None = None,
    fmt: Literal["folders", "parquet"] = "folders",
    max_sources: int | None = None,
) -> ExportResult:
    """Translate every normal source of the selected products (``max_sources`` per product at most) into each
    selected defect ``per_source`` times. ``data`` is a :class:`dtgan.evaluation.protocol.EvaluationData`."""
    product_names = select_names(products, data.products, "product", "--products")
    defect_names = select_names(defects, data.defects[1:], "defect", "--defects")  # [0] is normal, the anchor
    out = Path(out)
    check_output(out, fmt)
    check_product_names(product_names, "--products")  # folder names: one per product, none called "all"
    check_distinct_safe_names(defect_names, "defect", "--defects")
    manifest: list[dict] = []
    encoded: list[tuple[dict, bytes]] = []
    generated, started = 0, time.perf_counter()
    for product in product_names:
        p = data.products.index(product)
        rows = torch.nonzero(data.sources.p == p).flatten()[:max_sources]
        if len(rows) == 0:
            raise DataError(
                f"no normal '{product}' images in split {cfg.source_split}; set evaluation.source_split"
            )
        x_src = data.sources.images[rows]
        source_ids = [data.sources.ids[i] for i in rows.tolist()]
        stems = injective_file_stems(source_ids)  # ids such as "a/b" and "a_b" get distinct files
        for defect in defect_names:
            d = data.defects.index(defect)
            y_trg = torch.full((len(rows),), d, dtype=torch.long)
            ref_rows = torch.nonzero(data.references.y == d).flatten()
            for k in range(per_source):
                how = _guidance_of(k, guidance)
                seed = cell_seed(cfg.seed, 5, p, d, k)
                if how == "reference" and len(ref_rows) == 0:
                    raise DataError(
                        f"no '{defect}' images in split {data.reference_split} to use as references"
                    )
                refs = data.references.images[ref_rows] if how == "reference" else None
                x_fake = synthesize(
                    nets, x_src, y_trg, how, references=refs, seed=seed, batch_size=cfg.batch_size
                )
                ref_index = pick_references(y_trg, None, len(ref_rows), seed) if how == "reference" else None
                generated += len(x_fake)
                for i, image in enumerate(x_fake):
                    name = f"{stems[i]}_{how}_{k}.png"
                    record = {
                        "file": f"{safe_name(product)}/{safe_name(defect)}/{name}",
                        "product": product,
                        "defect": defect,
                        "source_id": source_ids[i],
                        "guidance": how,
                        "seed": seed,
                        "z_index": i if how == "latent" else "",
                        "reference_id": data.references.ids[int(ref_rows[ref_index[i]])]
                        if how == "reference"
                        else "",
                    }
                    encoded.append((record, png_bytes(image)))
                    manifest.append(record)
    elapsed = time.perf_counter() - started
    _check_one_row_per_file(manifest)
    if fmt == "folders":
        _write_folders(out, encoded, manifest)
        out_path = out
    else:
        out_path = _write_parquet(out, encoded, data, cfg.source_split)
    log.info(
        "exported %d synthetic images to %s (%.1f generated images/s)",
        generated,
        out_path,
        generated / elapsed if elapsed > 0 else float("nan"),
    )
    return ExportResult(out_path, generated, generated / elapsed if elapsed > 0 else float("nan"))


def _check_one_row_per_file(manifest: list[dict]) -> None:
    """An export never writes one file twice: every manifest row names its own file (case ignored)."""
    seen: dict[str, dict] = {}
    for record in manifest:
        key = record["file"].lower()
        if key in seen:
            first = seen[key]
            raise DataError(
                f"{first['source_id']!r} and {record['source_id']!r} would both be exported as {record['file']}; "
                "rename one of them in the data"
            )
        seen[key] = record


def _write_folders(out: Path, encoded: list[tuple[dict, bytes]], manifest: list[dict]) -> None:
    """The PNGs, then the manifest; on any failure (disk full, Ctrl-C) the files and folders this export made
    are removed again, so no PNGs are left without their manifest."""
    created = [folder for folder in (out, *out.parents) if not folder.exists()]
    written: list[Path] = []
    try:
        for record, data_png in encoded:
            path = out / record["file"]
            for folder in (path.parent, path.parent.parent):
                if not folder.exists():
                    created.append(folder)
            written.append(write_bytes_atomic(path, data_png))
        with atomic_path(out / MANIFEST_FILE) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            writer.writerows(manifest)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        for folder in sorted(set(created), key=lambda f: len(f.parts), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def _write_parquet(out: Path, encoded: list[tuple[dict, bytes]], data, split: str) -> Path:
    """One Parquet file of the platform's format; a synthetic row keeps its source's split."""
    from dtgan.data.parquet_io import Rows, write_dataset

    path = out / PARQUET_FILE if out.suffix != ".parquet" else out
    rows = Rows.empty()
    for record, image in encoded:
        rows.append(
            id=f"synthetic/{record['file'].removesuffix('.png')}",
            product=record["product"],
            defect=record["defect"],
            split=split,
            source="synthetic",
            image=image,
        )
    info = {"generator": "dtgan sample", "manifest": [r for r, _ in encoded]}
    write_dataset(str(path), rows, Vocab(products=data.products, defects=data.defects), info=info)
    return path
