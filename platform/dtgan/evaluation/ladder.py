"""The validity ladder: does the FID/KID extractor, on this data, tell a painted defect from none?

Built from the real data alone, per scope (all products, each product, each product x defect cell with real
defects), every rung is scored against one half of the scope's real defect images (the reference half), over
``evaluation.ladder_splits`` seeded half-splits; the ladder judges each rung's mean over the splits and records its
spread (with a dozen images per half one split is mostly sampling noise; KID, recorded beside FID and not judged,
comes from the first split):

- ``floor``: the other half of the real defects (the best any generator can do at this sample size);
- ``crop_paste``: real defects of the cell's type cut out by their masks and pasted on the product's normals;
- ``blurred`` and ``noised``: the other half, blurred or with Gaussian noise (a visible degradation);
- ``paints_nothing``: the product's normal images offered as defect images (a generator that paints nothing).

A metric passes a scope when the floor beats the degraded sets and "paints nothing" is clearly worse than every rung of
real defects (the floor, Crop&Paste): its *separation* ``(nothing - max(real)) / (nothing - floor)`` is at least
``evaluation.ladder_min_separation``. FID decides the verdict; KID's checks are recorded beside it. A scope that fails cannot tell a painted defect from none: no study may call
a winner on it. The real images' features come from one cached pass over the reference split; only the derived
sets (pastes, blurred, noised, normals) go through the extractor, at most ``ladder_max_images`` per cell.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

from dtgan import keys
from dtgan.config.crop_paste import CropPasteConfig
from dtgan.config.evaluation import EvaluationConfig
from dtgan.evaluation.crop_paste import DefectBank, crop_paste
from dtgan.evaluation.feature_cache import RealSetKey, fingerprint_images
from dtgan.evaluation.fidelity import FeatureExtractor
from dtgan.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)

RUNGS = ("floor", "crop_paste", "blurred", "noised", "paints_nothing")
REAL_DEFECT_RUNGS = ("floor", "crop_paste")
_SPLIT_RUNGS = ("floor", "blurred", "noised")  # drawn from each split's other half; the rest are fixed sets
LADDER_METRICS = ("fid", "kid")
# The metric whose ordering decides the verdict: FID, the headline number studies and searches rank by. KID's
# checks are recorded beside it; its unbiased estimate is too noisy on halves of a few dozen images to judge.
JUDGED_METRIC = "fid"
PASS, FAIL, UNTESTED = "pass", "fail", "untested"
CANNOT_TELL = keys.LADDER_CANNOT_TELL
POOLED = "pooled"
LADDER_VERSION = 2  # bump when the rungs or the checks change: cached ladders are then scored again
# The evaluation settings besides ladder_* that a ladder's numbers depend on.
_CFG_KEYS = ("seed", "kid_subsets", "kid_subset_size_max")
_STREAM = 9  # seed stream of the ladder's draws (the protocol's cell_seed streams use 0..8)


def _seed(seed: int, *parts: int) -> int:
    out = seed
    for part in (_STREAM, *parts):
        out = (out * 1_000_003 + part + 1) % (2**62)
    return out


def gaussian_blur(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """uint8 (N, C, H, W) blurred by a separable Gaussian of ``sigma_px`` (reflect padding)."""
    radius = max(1, int(round(3 * sigma_px)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma_px**2))
    kernel = kernel / kernel.sum()
    n, c, h, w = images.shape
    out = images.float().reshape(n * c, 1, h, w)
    pad = min(radius, h - 1, w - 1)
    kernel = kernel[radius - pad : radius + pad + 1]
    out = F.conv2d(F.pad(out, (pad, pad, 0, 0), mode="reflect"), kernel.reshape(1, 1, 1, -1))
    out = F.conv2d(F.pad(out, (0, 0, pad, pad), mode="reflect"), kernel.reshape(1, 1, -1, 1))
    return out.reshape(n, c, h, w).round().clamp(0, 255).to(torch.uint8)


def add_noise(images: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    """uint8 images plus Gaussian noise of ``std`` (in [0, 1] units of the 0..255 range), seeded."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=g) * (std * 255.0)
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


def _scores(
    f_rung: torch.Tensor, f_ref: torch.Tensor, cfg: EvaluationConfig, seed: int, with_kid: bool = True
) -> dict[str, float]:
    """FID, and with ``with_kid`` KID, of a rung's features against the reference half's (KID subsets of the
    smaller size)."""
    fid = fid_statistics_to_metric(
        fid_features_to_statistics(f_rung), fid_features_to_statistics(f_ref), verbose=False
    )[KEY_METRIC_FID]
    if not with_kid:
        return {"fid": float(fid)}
    kid = kid_features_to_metric(
        f_rung,
        f_ref,
        kid_subsets=cfg.kid_subsets,
        kid_subset_size=min(len(f_rung), len(f_ref), cfg.kid_subset_size_max),
        rng_seed=seed,
        verbose=False,
    )[KEY_METRIC_KID_MEAN]
    return {"fid": float(fid), "kid": float(kid)}


def judge(
    rungs: dict[str, dict[str, float]], min_separation: float, floor_tolerance: float
) -> dict[str, dict]:
    """Per metric: is the floor the best rung (no degraded set nor "paints nothing" beats it by more than
    ``floor_tolerance`` of the span from the floor to "paints nothing", sampling noise; Crop&Paste, real
    defects too, may tie with it), and how far "paints nothing" sits above the real defects. Whether blurring and noise are seen at all is recorded, not judged (a texture metric may shrug
    off mild noise)."""
    out: dict[str, dict] = {}
    for metric in LADDER_METRICS:
        values = {name: scores[metric] for name, scores in rungs.items()}
        floor, nothing = values["floor"], values["paints_nothing"]
        span = nothing - floor
        floor_best = span > 0 and all(
            v >= floor - floor_tolerance * span for name, v in values.items() if name not in REAL_DEFECT_RUNGS
        )
        real = max(values[name] for name in REAL_DEFECT_RUNGS if name in values)
        separation = (nothing - real) / span if span > 0 else float("-inf")
        out[metric] = {
            "floor_best": floor_best,
            "separation": separation,
            "degradations_seen": {
                name: values[name] > floor for name in ("blurred", "noised") if name in values
            },
            "verdict": PASS if floor_best and separation >= min_separation else FAIL,
        }
    return out


class _Cells:
    """The per-cell material of the ladder: the real defects' features, ``ladder_splits`` seeded half-splits of
    each cell's rows (reference half, other half; the first split is the one a single-split ladder drew), the
    normal sources."""

    def __init__(self, data, features: FeatureExtractor, extractor, cfg: EvaluationConfig) -> None:
        refs = data.references
        key = RealSetKey(
            data_fingerprint=data.reference_fingerprint,
            split=data.reference_split,
            selection="ladder:every-row",
            img_size=data.img_size,
            extractor=extractor.name,
            weights_fingerprint=extractor.weights_fingerprint,
        )
        self.real = features.real(refs.images, key)
        self.data, self.features, self.cfg = data, features, cfg
        self.splits: dict[tuple[int, int], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for p in range(len(data.products)):
            for d in data.defect_indices:
                rows = torch.nonzero((refs.p == p) & (refs.y == d)).flatten()
                if len(rows) < 2:
                    continue
                half = min(len(rows) // 2, cfg.ladder_max_images)
                self.splits[(p, d)] = []
                for k in range(cfg.ladder_splits):
                    parts = (p, d) if k == 0 else (p, d, k)
                    order = rows[
                        torch.randperm(
                            len(rows), generator=torch.Generator().manual_seed(_seed(cfg.seed, *parts))
                        )
                    ]
                    self.splits[(p, d)].append((order[:half], order[half : 2 * half]))

    def half(self, cell: tuple[int, int]) -> int:
        """Images per half of ``cell``."""
        return len(self.splits[cell][0][1])

    def normals(self, p: int, count: int) -> torch.Tensor:
        """``count`` normal sources of product ``p`` (seeded; repeated when there are fewer)."""
        rows = torch.nonzero(self.data.sources.p == p).flatten()
        if len(rows) == 0:
            return self.data.sources.images[:0]
        order = rows[
            torch.randperm(len(rows), generator=torch.Generator().manual_seed(_seed(self.cfg.seed, p)))
        ]
        return self.data.sources.images[order.repeat((count + len(order) - 1) // len(order))[:count]]


def _product_bank(bank: DefectBank | None, p: int, d: int) -> DefectBank | None:
    """The masked defects of type ``d`` cut from product ``p``'s own images (a real defect of this cell), else
    of any product; None when there is none."""
    if bank is None:
        return None
    rows = (bank.y == d) & (bank.p == p)
    if not bool(rows.any()):
        rows = bank.y == d
    if not bool(rows.any()):
        return None
    return DefectBank(bank.images[rows], bank.masks[rows], bank.y[rows], bank.p[rows])


@dataclass
class _CellRungs:
    """One cell's features: its real rows', the blurred and noised copies of the rows some split's other half
    uses (``derived_rows``, in that order), and the sets that do not depend on the split (Crop&Paste, "paints
    nothing"; absent where impossible)."""

    real: torch.Tensor
    derived_rows: torch.Tensor
    blurred: torch.Tensor
    noised: torch.Tensor
    fixed: dict[str, torch.Tensor]

    def split(
        self, cells: _Cells, cell: tuple[int, int], k: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(reference-half features, {rung: features}) of split ``k``."""
        ref_rows, other_rows = cells.splits[cell][k]
        derived = torch.searchsorted(self.derived_rows, other_rows)  # derived_rows is sorted (torch.unique)
        rungs = {
            "floor": self.real[other_rows],
            "blurred": self.blurred[derived],
            "noised": self.noised[derived],
        }
        return self.real[ref_rows], {**rungs, **self.fixed}


def _cell_rungs(
    cells: _Cells, p: int, d: int, bank: DefectBank | None, crop_cfg: CropPasteConfig
) -> _CellRungs:
    cfg, features = cells.cfg, cells.features
    derived_rows = torch.unique(torch.cat([other for _, other in cells.splits[(p, d)]]))
    images = cells.data.references.images[derived_rows]
    n = cells.half((p, d))
    side = images.shape[-1]
    normals = cells.normals(p, n)
    fixed = {}
    own = _product_bank(bank, p, d)
    if own is not None and len(normals):
        pasted, _ = crop_paste(
            normals, torch.full((n,), d, dtype=torch.long), own, crop_cfg, seed=_seed(cfg.seed, 1, p, d)
        )
        fixed["crop_paste"] = features(pasted)
    if len(normals):
        fixed["paints_nothing"] = features(normals)
    return _CellRungs(
        real=cells.real.features,
        derived_rows=derived_rows,
        blurred=features(gaussian_blur(images, cfg.ladder_blur_sigma_fraction * side)),
        noised=features(add_noise(images, cfg.ladder_noise_std, _seed(cfg.seed, 2, p, d))),
        fixed=fixed,
    )


def _mean_over_splits(per_split: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Each rung's FID and KID averaged over the splits that scored them, with their sample sd (``fid_sd``,
    ``kid_sd``; 0 from one split)."""
    out = {}
    for name in per_split[0]:
        scores: dict[str, float] = {}
        for metric in LADDER_METRICS:
            values = torch.tensor(
                [split[name][metric] for split in per_split if metric in split[name]], dtype=torch.float64
            )
            scores[metric] = float(values.mean())
            scores[f"{metric}_sd"] = float(values.std()) if len(values) > 1 else 0.0
        out[name] = scores
    return out


def ladder_cache_path(
    data, extractor, cfg: EvaluationConfig, crop_cfg: CropPasteConfig, has_bank: bool
) -> Path:
    """Where the ladder of this data, extractor and ladder config is kept: it depends on nothing else, so every
    evaluation of runs on one data set reads it back instead of scoring it again."""
    sources = data.sources
    payload = {
        "version": LADDER_VERSION,
        "references": data.reference_fingerprint,
        "sources": fingerprint_images(sources.ids or [str(i) for i in range(len(sources))], sources.images),
        "extractor": [extractor.name, extractor.weights_fingerprint],
        "bank": has_bank,
        "crop_paste": crop_cfg.model_dump(mode="json"),
        "cfg": {
            k: v for k, v in cfg.model_dump(mode="json").items() if k.startswith("ladder") or k in _CFG_KEYS
        },
    }
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cfg.cache_dir).expanduser() / "ladder" / f"ladder-{key}.json"


def validity_ladder(
    data,
    features: FeatureExtractor,
    cfg: EvaluationConfig,
    bank: DefectBank | None,
    crop_cfg: CropPasteConfig | None = None,
) -> dict:
    """The ladder of every scope (all products, each product, each cell), its verdicts and the failing scopes.

    ``data`` is the protocol's :class:`~dtgan.evaluation.protocol.EvaluationData`; ``bank`` the reference
    split's masked defects (None: no masks, no Crop&Paste rung).
    """
    started = time.perf_counter()
    crop_cfg = crop_cfg or CropPasteConfig()
    cache = ladder_cache_path(data, features.spec, cfg, crop_cfg, bank is not None)
    if cache.is_file():
        try:
            out = json.loads(cache.read_text())
        except (OSError, ValueError):
            out = None
        if isinstance(out, dict) and "scopes" in out:
            out["cached"] = True
            for line in ladder_lines(out):
                (log.warning if out["failing"] else log.info)("%s", line)
            return out
    cells = _Cells(data, features, features.spec, cfg)
    per_cell = {
        cell: _cell_rungs(cells, *cell, bank, crop_cfg) for cell in cells.splits if cells.half(cell) >= 1
    }
    scopes: list[tuple[str, str, list[tuple[int, int]]]] = [(keys.SCOPE_ALL, POOLED, list(per_cell))]
    for p, product in enumerate(data.products):
        scopes.append((product, POOLED, [c for c in per_cell if c[0] == p]))
    for p, d in per_cell:
        scopes.append((data.products[p], data.defects[d], [(p, d)]))
    records = []
    for product, defect, members in scopes:
        n = sum(cells.half(c) for c in members)
        record: dict = {"product": product, "defect": defect, "n": n, "splits": cfg.ladder_splits}
        rung_names = [
            r for r in RUNGS if members and all(r in per_cell[c].fixed or r in _SPLIT_RUNGS for c in members)
        ]
        if n < cfg.ladder_min_images or "paints_nothing" not in rung_names:
            record.update(
                verdict=UNTESTED,
                reason=f"{n} real defect images per half, ladder needs "
                f"evaluation.ladder_min_images={cfg.ladder_min_images} and normal sources",
            )
            records.append(record)
            continue
        seed = _seed(cfg.seed, 3, len(records)) % (2**32)
        per_split = []
        for k in range(cfg.ladder_splits):
            halves = [per_cell[c].split(cells, c, k) for c in members]
            ref = torch.cat([h[0] for h in halves])
            per_split.append(
                {
                    # KID (recorded, not judged) from the first split only: its subsets are the ladder's cost
                    name: _scores(torch.cat([h[1][name] for h in halves]), ref, cfg, seed, with_kid=k == 0)
                    for name in rung_names
                }
            )
        rungs = _mean_over_splits(per_split)
        checks = judge(rungs, cfg.ladder_min_separation, cfg.ladder_floor_tolerance)
        verdict = checks[JUDGED_METRIC]["verdict"]
        record.update(rungs=rungs, checks=checks, verdict=verdict)
        records.append(record)
    out = summarise(records, features.spec.name, cfg.ladder_min_separation)
    out["wall_s"] = time.perf_counter() - started
    write_text_atomic(cache, json.dumps(_json_safe(out), allow_nan=False))
    out["cached"] = False
    for line in ladder_lines(out):
        (log.warning if out["failing"] else log.info)("%s", line)
    return out


def _json_safe(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def scope_label(record: dict) -> str:
    if record["defect"] == POOLED:
        return "all products" if record["product"] == keys.SCOPE_ALL else f"product {record['product']}"
    return f"{record['product']}/{record['defect']}"


def summarise(records: list[dict], extractor: str, min_separation: float) -> dict:
    """The ladder's block of ``evaluation.json``: the data set's verdict (that of all products pooled), the
    failing and untested scopes and the line every output repeats when anything fails."""
    overall = records[0]["verdict"]
    failing = [scope_label(r) for r in records if r["verdict"] == FAIL]
    untested = [scope_label(r) for r in records if r["verdict"] == UNTESTED]
    message = None
    if failing:
        message = f"{extractor}: {CANNOT_TELL} ({', '.join(failing)}); no winner may be called on these"
    return {
        "extractor": extractor,
        "judged_metric": JUDGED_METRIC,
        "verdict": overall,
        "min_separation": min_separation,
        "failing": failing,
        "untested": untested,
        "message": message,
        "scopes": records,
    }


def ladder_fails(ladder: dict | None, product: str | None = None, defect: str | None = None) -> bool:
    """Whether the ladder failed the data set (``product`` None) or a product / cell scope."""
    if not ladder:
        return False
    for r in ladder["scopes"]:
        if r["product"] == (product or keys.SCOPE_ALL) and r["defect"] == (defect or POOLED):
            return r["verdict"] == FAIL
    return False


def ladder_metrics(ladder: dict | None) -> dict[str, float]:
    """The ladder's MLflow metrics: pass (1/0, absent when untested), separation, failing scopes."""
    if not ladder:
        return {}
    out = {keys.EVAL_LADDER_FAILING_SCOPES: float(len(ladder["failing"]))}
    if ladder["verdict"] != UNTESTED:
        out[keys.EVAL_LADDER_PASS] = 1.0 if ladder["verdict"] == PASS else 0.0
        separation = ladder["scopes"][0]["checks"][JUDGED_METRIC]["separation"]
        if separation is not None and math.isfinite(separation):
            out[keys.EVAL_LADDER_SEPARATION] = separation
    return out


def ladder_tag(ladder: dict | None) -> dict[str, str]:
    """``ladder_verdict``: pass, untested, or fail with the line every output repeats."""
    if not ladder:
        return {}
    if ladder["failing"]:
        scopes = [
            keys.ladder_scope(
                None if r["product"] == keys.SCOPE_ALL else r["product"],
                None if r["defect"] == POOLED else r["defect"],
            )
            for r in ladder["scopes"]
            if r["verdict"] == FAIL
        ]
        return {
            keys.TAG_LADDER_VERDICT: f"{FAIL}: {ladder['message']}"[:5000],
            keys.TAG_LADDER_FAILING: ",".join(scopes)[:5000],
        }
    return {keys.TAG_LADDER_VERDICT: ladder["verdict"]}


def ladder_lines(ladder: dict | None) -> list[str]:
    """What the terminal shows: one line per verdict, LOUD when a scope fails."""
    if not ladder:
        return []
    if ladder["failing"]:
        return [f"!!! VALIDITY LADDER FAILED: {ladder['message']}"]
    head = ladder["scopes"][0]
    if ladder["verdict"] == UNTESTED:
        return [f"validity ladder untested: {head.get('reason', '')}"]
    sep = head["checks"][JUDGED_METRIC]["separation"]
    extra = f"; untested: {', '.join(ladder['untested'])}" if ladder["untested"] else ""
    return [
        f"validity ladder passed ({ladder['extractor']}, {JUDGED_METRIC}): floor best, paints-nothing "
        f"separation {sep:.2f} on all products{extra}"
    ]
