"""What transfer locality and background PSNR a *perfect* defect painter scores on a data set, and how much a
generator's reconstruction error alone costs it: the bar behind the CPU preset's locality target.

    python benchmarks/locality_bar.py --data data/cpu/benchmark.parquet --img-size 32

The stored (clean background, defect image) pairs of the removal split are a perfect normal -> defect transfer.
Each is scored with the evaluation's own ``change_locality``; then Gaussian noise of a given PSNR (the residual
error of an imperfect generator, spread over the whole image) is added to the output and scored again. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

import torch  # noqa: E402

from dtgan.data.dataset import DefectImageDataset  # noqa: E402
from dtgan.evaluation.disentanglement import change_locality, psnr  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/cpu/benchmark.parquet")
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--split", default="test")
    parser.add_argument("--top-fraction", type=float, default=0.1)
    parser.add_argument(
        "--noise-psnr", default="40,30,27,25,23,21", help="comma list of residual-error PSNRs (dB)"
    )
    args = parser.parse_args()
    ds = DefectImageDataset(args.data, splits=(args.split,), img_size=args.img_size)
    rows = torch.nonzero(ds.y != 0).flatten()
    clean, defect = ds.clean_uint8[rows].expand(-1, 3, -1, -1), ds.images_uint8[rows].expand(-1, 3, -1, -1)
    share, bg = change_locality(clean, defect, args.top_fraction)
    out = {
        "data": args.data,
        "img_size": args.img_size,
        "pairs": len(rows),
        "perfect": {
            "transfer_locality": float(share.mean()),
            "transfer_bg_psnr": float(bg.clamp(max=100).mean()),
            "removal_psnr_do_nothing": float(psnr(defect, clean).mean()),
        },
        "with_residual_error": [],
    }
    g = torch.Generator().manual_seed(0)
    for db in [float(v) for v in args.noise_psnr.split(",")]:
        sigma = 255.0 / (10 ** (db / 20))
        noisy = (
            (defect.float() + sigma * torch.randn(defect.shape, generator=g))
            .clamp(0, 255)
            .round()
            .to(torch.uint8)
        )
        share, bg = change_locality(clean, noisy, args.top_fraction)
        out["with_residual_error"].append(
            {
                "residual_psnr_db": db,
                "transfer_locality": float(share.mean()),
                "transfer_bg_psnr": float(bg.mean()),
            }
        )
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
