"""Write a Parquet data set (e.g. the embedded benchmark) out as a user's data: a folder tree of images, a mirror tree
of masks and the file's split as a CSV, the three inputs of `dtgan data import folders ROOT --masks MASKROOT
--split-file CSV` (README "Your own data").

    python docs/own-data-example.py bench.parquet photos masks split.csv
"""

import csv
import io
import sys
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

source, root, masks, split_csv = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
rows = pq.read_table(source, columns=["id", "product", "defect", "split", "image", "mask"]).to_pylist()
with open(split_csv, "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["id", "split"])
    for row in rows:
        stem = row["id"].replace("/", "_")
        for folder, blob in ((root, row["image"]), (masks, row["mask"])):
            if blob is not None:
                path = folder / row["product"] / row["defect"] / f"{stem}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.open(io.BytesIO(blob)).save(path)
        out.writerow([f"{row['product']}/{row['defect']}/{stem}", row["split"]])
print(f"{len(rows)} images under {root}, masks under {masks}, split in {split_csv}")
