"""The Parquet format of every data set: columns, split names, label vocabulary in the metadata, atomic writes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from dtgan.data.vocab import METADATA_KEY, Vocab
from dtgan.errors import DataError
from dtgan.utils.atomic import atomic_path

SPLITS = ("gan_train", "gan_holdout", "val", "test")
SOURCES = ("real", "synthetic")
INFO_KEY = b"dtgan.info"  # free-form JSON about how the file was made (generator, seed, size, unseen cells)

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("product", pa.string(), nullable=False),
        pa.field("defect", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("image", pa.binary(), nullable=False),  # PNG bytes, 8/16-bit gray or RGB
        pa.field("mask", pa.binary()),  # PNG bytes (0 = background, >0 = defect) or null
        pa.field("clean", pa.binary()),  # PNG bytes of the defect-free background, or null
    ]
)
REQUIRED_COLUMNS = tuple(SCHEMA.names)


@dataclass
class Rows:
    """Column lists of a data set under construction (one entry per image)."""

    id: list[str]
    product: list[str]
    defect: list[str]
    split: list[str]
    source: list[str]
    image: list[bytes]
    mask: list[bytes | None]
    clean: list[bytes | None]

    @classmethod
    def empty(cls) -> Rows:
        return cls([], [], [], [], [], [], [], [])

    def append(
        self,
        *,
        id: str,
        product: str,
        defect: str,
        split: str,
        source: str,
        image: bytes,
        mask: bytes | None = None,
        clean: bytes | None = None,
    ) -> None:
        for name, value in (
            ("id", id),
            ("product", product),
            ("defect", defect),
            ("split", split),
            ("source", source),
            ("image", image),
            ("mask", mask),
            ("clean", clean),
        ):
            getattr(self, name).append(value)

    def __len__(self) -> int:
        return len(self.id)


def resolve(path: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it, for a local path or a URI (s3://, gs://, file://)."""
    if "://" in path:
        try:
            return pafs.FileSystem.from_uri(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{path}: cannot open this URI ({exc})") from exc
    return pafs.LocalFileSystem(), path


def read_schema(path: str) -> pa.Schema:
    filesystem, inner = resolve(path)
    try:
        return pq.read_schema(inner, filesystem=filesystem)
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such data set; create one with `dtgan data synth` or `dtgan data import`"
        ) from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc


def read_vocab(path: str) -> Vocab:
    """The vocabulary of a Parquet data set (local path or pyarrow filesystem URI), from its schema metadata."""
    return Vocab.from_schema_metadata(read_schema(path).metadata, path)


def read_table(path: str, columns: list[str] | None = None) -> tuple[pa.Table, Vocab]:
    """Read a data set (optionally only some columns) and its vocabulary, checking columns and labels."""
    schema = read_schema(path)
    missing = [name for name in REQUIRED_COLUMNS if name not in schema.names]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(REQUIRED_COLUMNS)}"
        )
    _check_column_types(schema, path)
    vocab = Vocab.from_schema_metadata(schema.metadata, path)
    filesystem, inner = resolve(path)
    try:
        table = pq.read_table(inner, filesystem=filesystem, columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    _check_labels(table, vocab, path)
    ids = table["id"] if "id" in table.column_names else _read_ids(path, filesystem, inner)
    _check_unique(ids, path)
    return table, vocab


def _read_ids(path: str, filesystem: pafs.FileSystem, inner: str) -> pa.ChunkedArray:
    try:
        return pq.read_table(inner, filesystem=filesystem, columns=["id"])["id"]
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc


def _check_unique(ids: pa.ChunkedArray, path: str) -> None:
    """Refuse a file whose ``id`` column repeats a value: rows, metrics and exports are named by it."""
    if pc.count_distinct(ids).as_py() == len(ids):
        return
    values = ids.to_pylist()
    first: dict[str, int] = {}
    for row, value in enumerate(values):
        if value in first:
            raise DataError(
                f"{path}: id {value!r} appears more than once (rows {first[value]} and {row}); ids must be unique, "
                "rebuild the file with dtgan data import or dtgan data synth"
            )
        first[value] = row


def _check_column_types(schema: pa.Schema, path: str) -> None:
    """Each column of the format has its type (text for labels, bytes for images; large or dictionary-encoded
    variants of them too), so a file written by another tool fails here and not deep inside decoding."""
    for field in SCHEMA:
        found = schema.field(field.name).type
        value = found.value_type if pa.types.is_dictionary(found) else found
        text = pa.types.is_string(value) or pa.types.is_large_string(value)
        binary = pa.types.is_binary(value) or pa.types.is_large_binary(value)
        if not (text if pa.types.is_string(field.type) else binary):
            kind = "text (string)" if pa.types.is_string(field.type) else "PNG bytes (binary)"
            raise DataError(
                f"{path}: column '{field.name}' holds {found}, the format needs {kind}; write the file with the "
                "types of dtgan.data.parquet_io.SCHEMA (docs/interfaces.md), or import the images as folders"
            )


def _check_labels(table: pa.Table, vocab: Vocab, path: str) -> None:
    allowed = {"product": vocab.products, "defect": vocab.defects, "split": SPLITS, "source": SOURCES}
    for column, values in allowed.items():
        if column not in table.column_names:
            continue
        for value in table.column(column).unique().to_pylist():
            if value not in values:
                row = table.column(column).to_pylist().index(value)
                raise DataError(
                    f"{path}: row {row} has unknown {column} {value!r}; allowed: {', '.join(values)}"
                )


def read_info(path: str) -> dict:
    """The generator's notes stored with the file (empty for files without them)."""
    metadata = read_schema(path).metadata or {}
    return json.loads(metadata[INFO_KEY]) if INFO_KEY in metadata else {}


def write_dataset(path: str, rows: Rows, vocab: Vocab, info: dict | None = None) -> None:
    """Write rows atomically (temp name + rename) with the vocabulary in the schema metadata.

    Checks that every label is in the vocabulary, every split is known and ids are unique first, so a
    bad data set is never written.
    """
    table = pa.Table.from_pydict({name: getattr(rows, name) for name in SCHEMA.names}, schema=SCHEMA)
    _check_labels(table, vocab, path)
    if len(set(rows.id)) != len(rows.id):
        raise DataError(f"{path}: ids are not unique")
    metadata = {METADATA_KEY: vocab.to_json().encode(), INFO_KEY: json.dumps(info or {}).encode()}
    table = table.replace_schema_metadata(metadata)
    if "://" in path:
        raise DataError(f"{path}: write locally, then copy the file to object storage")
    with atomic_path(path) as tmp:
        # Images are already compressed; small row groups keep partial reads cheap.
        pq.write_table(table, tmp, compression="none", row_group_size=1024)
        os.chmod(tmp, 0o644)  # the temp file is created 0600; a data set is meant to be shared
