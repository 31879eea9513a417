"""Defect recall: did the generator paint the defect? The share of each product x defect cell's synthetic images
that the data set's defect classifier (trained on real images only) assigns to the intended defect type, with the
same classifier's recall on held-out real defects (ceiling) and the share of held-out normals it assigns to the
intended type (floor: what painting nothing scores). One forward pass of the classifier per synthetic image; none
when the FID extractor is that classifier (its logits are reused)."""

from __future__ import annotations

import torch

from dtgan import keys
from dtgan.evaluation.defect_classifier import DefectClassifier


def synthetic_logits(clf: DefectClassifier, sets, logits: dict | None = None) -> dict:
    """(N, K) classifier logits of every synthetic cell: ``logits`` reused where given (the FID pass of this very
    network), else one pass per latent/reference image, the mix set's rows taken from those."""
    out = dict(logits or {})
    for cell, images in sets.images.items():
        if cell not in out and cell[0] != "mix":
            out[cell] = clf.logits(images)
    for cell, images in sets.images.items():
        if cell in out:
            continue
        rows = sets.mix_rows.get(cell[1:])
        if rows is None:
            out[cell] = clf.logits(images)
        else:
            from_latent, from_reference = rows
            out[cell] = torch.cat(
                [out[("latent", *cell[1:])][from_latent], out[("reference", *cell[1:])][from_reference]]
            )
    return out


def _share(hits: torch.Tensor) -> float | None:
    return float(hits.float().mean()) if hits.numel() else None


def defect_recall_scores(clf: DefectClassifier, sets, data, logits: dict | None = None) -> dict:
    """Per guidance and cell, per product and over all products: recall, ceiling and floor (``None`` where a
    reference set is empty), as the ``defect_recall`` block of ``evaluation.json``."""
    cell_logits = synthetic_logits(clf, sets, logits)
    predicted = {cell: clf.defects(v) for cell, v in cell_logits.items()}
    normals = data.sources
    normal_defects = clf.defects(clf.logits(normals.images))
    holdout = data.holdout
    holdout_defects = clf.defects(clf.logits(holdout.images)) if holdout is not None else None

    def ceiling(products: list[int], defects: list[int]) -> float | None:
        if holdout is None:
            return None
        rows = torch.isin(holdout.p, torch.tensor(products)) & torch.isin(holdout.y, torch.tensor(defects))
        return _share((holdout_defects == holdout.y)[rows])

    def floor(cells: list[tuple[int, int]]) -> float | None:
        hits = [normal_defects[normals.p == p] == d for p, d in cells]
        return _share(torch.cat(hits)) if hits else None

    guidances = sorted({cell[0] for cell in predicted}, key=lambda g: keys.GUIDANCES.index(g))
    cells = sorted({cell[1:] for cell in predicted})
    records = []
    for guidance in guidances:
        for p_sel in [None, *range(len(data.products))]:
            members = [(p, d) for p, d in cells if p_sel is None or p == p_sel]
            if not members:
                continue
            hits = torch.cat([predicted[(guidance, p, d)] == d for p, d in members])
            records.append(
                {
                    "guidance": guidance,
                    "product": keys.SCOPE_ALL if p_sel is None else data.products[p_sel],
                    "defect": "pooled",
                    "key": keys.defect_recall_key(guidance, None if p_sel is None else data.products[p_sel]),
                    "recall": _share(hits),
                    "n": int(hits.numel()),
                    "ceiling": ceiling(sorted({p for p, _ in members}), sorted({d for _, d in members})),
                    "floor": floor(members),
                }
            )
        for p, d in cells:
            hits = predicted[(guidance, p, d)] == d
            records.append(
                {
                    "guidance": guidance,
                    "product": data.products[p],
                    "defect": data.defects[d],
                    "key": keys.defect_recall_key(guidance, data.products[p], data.defects[d]),
                    "recall": _share(hits),
                    "n": int(hits.numel()),
                    "ceiling": ceiling([p], [d]),
                    "floor": floor([(p, d)]),
                }
            )
    return {
        "classifier": f"{clf.spec.name}@{clf.spec.weights_fingerprint}",
        "ceiling_split": data.holdout_split if holdout is not None else None,
        "floor_split": "sources (normals)",
        "records": records,
    }


def recall_metrics(recall: dict | None) -> dict[str, float]:
    """Every record's recall under its key; the all-products ceiling and floor once (they do not depend on the
    guidance)."""
    if not recall:
        return {}
    out = {r["key"]: r["recall"] for r in recall["records"] if r["recall"] is not None}
    pooled = next((r for r in recall["records"] if r["product"] == keys.SCOPE_ALL), None)
    if pooled is not None:
        if pooled["ceiling"] is not None:
            out[keys.EVAL_DEFECT_RECALL_CEILING] = pooled["ceiling"]
        if pooled["floor"] is not None:
            out[keys.EVAL_DEFECT_RECALL_FLOOR] = pooled["floor"]
    return out


def recall_lines(recall: dict | None) -> list[str]:
    if not recall:
        return []
    lines = []
    for r in recall["records"]:
        if r["product"] != keys.SCOPE_ALL:
            continue
        ceiling = f"{r['ceiling']:.3f}" if r["ceiling"] is not None else "n/a"
        floor = f"{r['floor']:.3f}" if r["floor"] is not None else "n/a"
        lines.append(
            f"  {r['guidance']:<9} defect recall {r['recall']:.3f}   (real defects held out: {ceiling}; "
            f"normals: {floor})"
        )
    return lines
