"""Does the offline FID extractor pass the validity ladder on the three check data sets? Prints JSON.

    python benchmarks/ladder_check.py --work /tmp/ladder                      # dtgan-pretrained-cnn, all three
    python benchmarks/ladder_check.py --work /tmp/ladder --extractor dtgan-defect-cnn --sets benchmark
    python benchmarks/ladder_check.py --work /tmp/ladder --sets photos -o evaluation.pretrained_cnn.seed=1

The data sets (built under ``--work`` when missing, with the user-facing builders):

- ``benchmark``: the embedded benchmark as the CPU preset renders it (``dtgan data synth --scale 0.5
  --defect-boldness 2``, experiments/reproduce_cpu.py);
- ``second``: the second data set (``--products knurled,coated,grained --defects crack,dent``, same scale);
- ``photos``: the small real-photo set of ``dtgan data photos`` (crops of photographs that installed packages
  ship, procedural crack/stain defects with masks, ~380 gan_train images, one product without stain).

Each is read at ``--img-size`` (32, the CPU presets') with the evaluation settings of ``--preset`` (cpu32) and
scored by :func:`dtgan.evaluation.crop_paste_evaluate.score_ladder`, the evaluation's own ladder. Per data set the
JSON has the extractor (name@weights fingerprint), the verdict, the failing and untested scopes, per scope the
FID of every rung with its separation, and for the pretrained network with its local head the AUROC of its defect
evidence per cell (real defects against the product's normals: can it see the defect at all?). Exit status 0 whatever the verdicts: a failure is a finding to report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

import torch  # noqa: E402

from dtgan.config import load_config  # noqa: E402
from dtgan.data.photos import build_photo_set  # noqa: E402
from dtgan.data.synth import synthesize_benchmark  # noqa: E402
from dtgan.evaluation.crop_paste_evaluate import score_ladder  # noqa: E402
from dtgan.evaluation.extractors import resolve_extractor  # noqa: E402
from dtgan.evaluation.inputs import data_inputs, offline_training_images  # noqa: E402
from dtgan.evaluation.pretrained_cnn import pretrained_metadata  # noqa: E402

SYNTH = {
    "benchmark": {"scale": 0.5, "defect_boldness": 2.0},
    "second": {
        "scale": 0.5,
        "defect_boldness": 2.0,
        "products": "knurled,coated,grained",
        "defects": "crack,dent",
    },
}
SETS = ("benchmark", "second", "photos")


def ensure_data(name: str, work: Path) -> Path:
    path = work / name / "data.parquet"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if name == "photos":
        build_photo_set(str(path))
    else:
        synthesize_benchmark(str(path), **SYNTH[name])
    return path


def _scope(record: dict) -> dict:
    out = {"scope": f"{record['product']}/{record['defect']}", "n_per_half": record["n"]}
    out["verdict"] = record["verdict"]
    if "rungs" in record:
        out["fid"] = {name: round(v["fid"], 2) for name, v in record["rungs"].items()}
        out["fid_sd"] = {name: round(v.get("fid_sd", 0.0), 2) for name, v in record["rungs"].items()}
        sep = record["checks"]["fid"]["separation"]
        out["separation"] = round(sep, 3) if sep is not None else None
        out["floor_best"] = record["checks"]["fid"]["floor_best"]
    return out


def save_rows(inputs, cfg, out: Path, per_row: int = 8) -> None:
    """A PNG of each cell with real defects: a row of its real defects, one of the product's normal sources, one
    of Crop&Paste onto those normals (the ladder's floor, "paints nothing" and Crop&Paste material)."""
    from torchvision.utils import save_image

    from dtgan.config.crop_paste import CropPasteConfig
    from dtgan.evaluation.crop_paste import crop_paste
    from dtgan.evaluation.crop_paste_evaluate import reference_bank

    data, refs = inputs.data, inputs.data.references
    bank = reference_bank(inputs, cfg)
    rows = []
    for p in range(len(data.products)):
        normals = data.sources.images[data.sources.p == p][:per_row]
        for d in data.defect_indices:
            real = refs.images[(refs.p == p) & (refs.y == d)][:per_row]
            if len(real) < per_row or len(normals) < per_row:
                continue
            pasted, _ = crop_paste(normals, torch.full((per_row,), d), bank, CropPasteConfig(), seed=1)
            rows += [real, normals, pasted]
    if rows:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_image(torch.cat(rows).float() / 255, str(out), nrow=per_row, padding=1)


def evidence_auroc(inputs, extractor) -> dict[str, float]:
    """Per cell with real defects: the AUROC of the pretrained network's defect evidence for the cell's defect type,
    the cell's real defects against the same product's normals of the reference split (0.5: chance). Empty for a
    network without the local head, or a data set whose defect names the corpus does not know."""
    from dtgan.data.defects import DEFECTS
    from dtgan.evaluation.defect_cnn import defect_evidence, load_defect_cnn

    net = load_defect_cnn(extractor.weights_path)
    data, refs = inputs.data, inputs.data.references
    if not net.local_classes:
        return {}
    with torch.no_grad():
        evidence = defect_evidence(net.parts(refs.images)[2])
    out = {}
    for p, product in enumerate(data.products):
        normal = (refs.p == p) & (refs.y == data.defects.index("normal"))
        for d in data.defect_indices:
            real = (refs.p == p) & (refs.y == d)
            if data.defects[d] not in DEFECTS or int(real.sum()) < 2 or int(normal.sum()) < 2:
                continue
            k = list(DEFECTS).index(data.defects[d])
            pos, neg = evidence[real, k][:, None], evidence[normal, k][None, :]
            auroc = (pos > neg).float().mean() + 0.5 * (pos == neg).float().mean()
            out[f"{product}/{data.defects[d]}"] = round(float(auroc), 3)
    return out


def check(name: str, path: Path, args) -> dict:
    overrides = [
        f"evaluation.cache_dir={args.work / 'cache'}",
        f"evaluation.feature_extractor={args.extractor}",
    ]
    if args.pretrained_cache:
        overrides.append(f"evaluation.pretrained_cnn.cache_dir={args.pretrained_cache}")
    if args.weights:
        overrides.append(f"evaluation.pretrained_cnn.weights_path={args.weights}")
    if args.fine_tune:
        overrides.append("evaluation.pretrained_cnn.fine_tune=true")
    overrides += args.override
    cfg = load_config(args.preset, overrides).evaluation
    started = time.perf_counter()
    inputs = data_inputs(str(path), cfg, args.img_size, args.work / name / "out")
    extractor = resolve_extractor(cfg, lambda: offline_training_images(inputs.data))
    ladder = score_ladder(inputs, extractor, cfg)
    if args.rows_png:
        save_rows(inputs, cfg, args.rows_png / f"{name}_ladder_rows.png")
    out = {
        "data_set": name,
        "data": str(path),
        "img_size": args.img_size,
        "extractor": f"{extractor.name}@{extractor.weights_fingerprint}",
        "verdict": ladder["verdict"],
        "failing": ladder["failing"],
        "untested": ladder["untested"],
        "message": ladder["message"],
        "ladder_cached": ladder["cached"],
        "wall_s": round(time.perf_counter() - started, 1),
        "scopes": [_scope(r) for r in ladder["scopes"]],
    }
    if extractor.name == "dtgan-pretrained-cnn":
        out["pretrained"] = pretrained_metadata(extractor.weights_path)
        out["evidence_auroc"] = evidence_auroc(inputs, extractor)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder of the data sets and caches")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma list of {', '.join(SETS)}")
    parser.add_argument("--extractor", default="dtgan-pretrained-cnn")
    parser.add_argument("--preset", default="cpu32")
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument(
        "--pretrained-cache", default=None, help="evaluation.pretrained_cnn.cache_dir (default: the preset's)"
    )
    parser.add_argument(
        "--weights", default=None, help="evaluation.pretrained_cnn.weights_path: pinned pretrained weights"
    )
    parser.add_argument(
        "--fine-tune",
        action="store_true",
        help="evaluation.pretrained_cnn.fine_tune: the pretrained network fine-tuned on each data set's gan_train",
    )
    parser.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a further config override, e.g. -o evaluation.pretrained_cnn.seed=1 (repeatable)",
    )
    parser.add_argument(
        "--rows-png",
        type=Path,
        default=None,
        help="folder for <set>_ladder_rows.png: per cell a row of real defects, of normals, of Crop&Paste",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        if name not in SETS:
            raise SystemExit(f"--sets: unknown data set {name!r}; choose from {', '.join(SETS)}")
        results.append(check(name, ensure_data(name, args.work), args))
    print(
        json.dumps(
            {
                "extractor": args.extractor + (" (fine-tuned per data set)" if args.fine_tune else ""),
                "all_pass": all(r["verdict"] == "pass" and not r["failing"] for r in results),
                "results": results,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
