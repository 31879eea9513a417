"""Paired differences between downstream arms over classifier and GAN seeds, with the report's seed-level test.

A classifier seed gives every arm the same initialisation and batch order, and a GAN seed the same generator
initialisation to every recipe, so two arms are compared on the (GAN seed, classifier seed) pairs they share:
d_i = error_a,i - error_b,i. An arm that uses no generator (trad_aug, no_aug, crop_paste) has one value per
classifier seed, paired with each GAN seed's value of the other arm. The verdict is
``dtgan.tracking.report.uncertainty.seed_test`` (paired t over the pairs) with Holm's correction over the listed
comparisons, the smallest detectable difference is its ``min_detectable`` (alpha, 80 % power, the observed
paired sd), and ``seeds_needed`` says how many pairs would detect a given difference at that sd. With two or more
GAN seeds the same test is also run on the GAN-seed means (the generator's own variance, which the pooled test
over pairs treats as if it were classifier noise).

A study run with a lever of the synthetic images (``downstream.synthetic_share`` other than 1, a
``downstream.synthetic_filter``) names its balanced arms with it ('g mix share2', 'crop_paste share2',
'g mix filter0.5'), so that they sit beside the same arms without it.

Error per product x class cell comes from each job's ``test_cells``; a defect cell without any real training
example (``unseen``: on the benchmark woven x spot) is reported apart, since only transferred defects teach it.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass

import numpy as np

from dtgan.config.downstream import CROP_PASTE_ARM, NO_FILTER, SYNTHETIC_ARMS
from dtgan.tracking.report.uncertainty import PairedTest, holm_adjust, min_detectable, seed_test

GAN_ARMS = tuple(a for a in SYNTHETIC_ARMS if a != CROP_PASTE_ARM)  # the arms whose images a generator made
NO_GAN = "-"  # the GAN seed of an arm that uses no generator
Key = tuple[str, int]  # (GAN seed or NO_GAN, classifier seed)


def row_name(arm: str, recipe: str, config: dict) -> str:
    """'<recipe> <arm>' for a generator arm, '<arm>' else, with the levers of ``config`` (a ``downstream.json``'s
    ``config``) that change a balanced arm's images: ' share<s>' and, for a generator arm, ' filter<keep>'."""
    name = f"{recipe} {arm}" if arm in GAN_ARMS else arm
    if arm in SYNTHETIC_ARMS:
        share = float(config.get("synthetic_share", 1.0))
        if share != 1.0:
            name += f" share{share:g}"
        if arm in GAN_ARMS and config.get("synthetic_filter", NO_FILTER) != NO_FILTER:
            name += f" filter{float(config['synthetic_filter_keep']):g}"
    return name


def arm_series(payload: dict, recipe: str, gan_seed: str | int) -> dict[str, dict[Key, float]]:
    """Row name -> {(GAN seed, classifier seed): test error %} of one ``downstream.json``: synthetic arms are
    named '<recipe> <arm>' and keyed by ``gan_seed``, the others by their arm alone and ``NO_GAN``
    (:func:`row_name`)."""
    rows: dict[str, dict[Key, float]] = {}
    config = payload.get("config", {})
    for job in payload["jobs"]:
        arm = job["cell"]["arm"]
        synthetic = arm in GAN_ARMS
        name = row_name(arm, recipe, config)
        rows.setdefault(name, {})[(str(gan_seed) if synthetic else NO_GAN, int(job["seed"]))] = float(
            job["test_error_pct"]
        )
    return rows


def merge(series: list[dict[str, dict[Key, float]]]) -> dict[str, dict[Key, float]]:
    """Rows of several runs' ``arm_series``; a no-GAN value seen twice must agree (the same classifier run)."""
    out: dict[str, dict[Key, float]] = {}
    for rows in series:
        for name, values in rows.items():
            row = out.setdefault(name, {})
            for key, value in values.items():
                if key in row and key[0] == NO_GAN and not np.isclose(row[key], value):
                    raise ValueError(
                        f"{name} classifier seed {key[1]}: {row[key]} and {value} in two runs; the arms without "
                        "a generator must come from the same downstream config"
                    )
                row[key] = value
    return out


def paired_values(a: dict[Key, float], b: dict[Key, float]) -> tuple[dict[str, float], dict[str, float]]:
    """The values of ``a`` and ``b`` on the pairs they share, keyed 'GAN/classifier seed'; a no-GAN side is
    repeated for each GAN seed of the other."""

    def expand(x: dict[Key, float], other: dict[Key, float]) -> dict[Key, float]:
        gans = sorted({g for g, _ in other if g != NO_GAN})
        if not gans or any(g != NO_GAN for g, _ in x):
            return x
        return {(g, s): v for g in gans for (_, s), v in x.items()}

    a2, b2 = expand(a, b), expand(b, a)
    shared = sorted(set(a2) & set(b2))
    return {f"{g}/{s}": a2[(g, s)] for g, s in shared}, {f"{g}/{s}": b2[(g, s)] for g, s in shared}


def seeds_needed(
    sd: float, difference: float, alpha: float, power: float = 0.8, limit: int = 1000
) -> int | None:
    """The fewest pairs whose paired t-test detects ``difference`` at ``alpha`` with ``power``, given the paired
    sd; None beyond ``limit``."""
    if sd == 0:
        return 2
    for n in range(2, limit + 1):
        if min_detectable(sd / np.sqrt(n), n - 1, alpha, power) <= abs(difference):
            return n
    return None


@dataclass(frozen=True)
class Comparison:
    """Arm ``a`` minus arm ``b``: the pooled paired test and, with >= 2 GAN seeds, the GAN-seed-level one."""

    a: str
    b: str
    pairs: int
    mean_difference: float | None
    sd_difference: float | None
    test: PairedTest | None  # over (GAN seed, classifier seed) pairs; p_adjusted/significant after Holm
    reason: str | None
    gan_seeds: int
    gan_test: PairedTest | None  # over GAN-seed means (paired by GAN seed)
    per_gan: dict[str, float]  # GAN seed -> mean difference over classifier seeds
    seeds_for_target: int | None


def compare(
    rows: dict[str, dict[Key, float]], pairs: list[tuple[str, str]], alpha: float = 0.05, target: float = 2.0
) -> list[Comparison]:
    """The listed comparisons (a, b), Holm-corrected together on the pooled test."""
    out = []
    for a, b in pairs:
        va, vb = paired_values(rows[a], rows[b])
        d = [va[k] - vb[k] for k in va]
        test = seed_test(va, vb, alpha) if len(d) >= 2 else "fewer than 2 shared seed pairs"
        by_gan: dict[str, list[float]] = {}
        for k, diff in zip(va, d):
            by_gan.setdefault(k.split("/")[0], []).append(diff)
        per_gan = {g: statistics.fmean(v) for g, v in sorted(by_gan.items())}
        gan_test = None
        if len(by_gan) >= 2:
            ma = {g: statistics.fmean(va[k] for k in va if k.split("/")[0] == g) for g in by_gan}
            mb = {g: statistics.fmean(vb[k] for k in vb if k.split("/")[0] == g) for g in by_gan}
            t = seed_test(ma, mb, alpha)
            gan_test = t if isinstance(t, PairedTest) else None
        sd = statistics.stdev(d) if len(d) >= 2 else None
        out.append(
            Comparison(
                a,
                b,
                len(d),
                statistics.fmean(d) if d else None,
                sd,
                test if isinstance(test, PairedTest) else None,
                test if isinstance(test, str) else None,
                len(by_gan),
                gan_test,
                per_gan,
                seeds_needed(sd, target, alpha) if sd is not None else None,
            )
        )
    tested = [c for c in out if c.test is not None]
    adjusted = holm_adjust([c.test.p_value for c in tested])
    holm = {id(c): p for c, p in zip(tested, adjusted, strict=True)}
    return [
        dataclasses.replace(
            c,
            test=dataclasses.replace(c.test, p_adjusted=holm[id(c)], significant=holm[id(c)] < alpha),
        )
        if c.test is not None
        else c
        for c in out
    ]


def cell_errors(payloads: list[tuple[str, str | int, dict]]) -> dict[str, dict[str, dict]]:
    """Row name -> cell ('product/class') -> {errors: [% per classifier run], images, unseen} over the runs."""
    out: dict[str, dict[str, dict]] = {}
    for recipe, gan_seed, payload in payloads:
        for job in payload["jobs"]:
            arm = job["cell"]["arm"]
            name = row_name(arm, recipe, payload.get("config", {}))
            for cell, c in job.get("test_cells", {}).items():
                entry = out.setdefault(name, {}).setdefault(
                    cell, {"errors": [], "images": c["images"], "unseen": c["unseen"], "seen_keys": set()}
                )
                key = (str(gan_seed), job["seed"]) if arm in GAN_ARMS else job["seed"]
                if key in entry["seen_keys"]:  # a no-GAN arm repeated in another run: the same classifier
                    continue
                entry["seen_keys"].add(key)
                entry["errors"].append(c["error_pct"])
    for cells in out.values():
        for entry in cells.values():
            entry.pop("seen_keys")
    return out


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.1f} ± {sd:.1f}"


def _p(value: float | None) -> str:
    return "-" if value is None else (f"{value:.3f}" if value >= 0.001 else f"{value:.1e}")


def markdown(
    rows: dict[str, dict[Key, float]],
    comparisons: list[Comparison],
    cells: dict[str, dict[str, dict]],
    alpha: float = 0.05,
    target: float = 2.0,
    test_images: int | None = None,
) -> str:
    """The arms' errors, the paired comparisons with the verdict and the power, and the per-cell tables."""
    lines = [
        "| arm | classifier runs | GAN seeds | test error % (mean ± sd over runs) |",
        "|---|---:|---:|---:|",
    ]
    for name, values in rows.items():
        gans = sorted({g for g, _ in values if g != NO_GAN})
        lines.append(
            f"| {name} | {len(values)} | {', '.join(gans) or '-'} | {_mean_sd(list(values.values()))} |"
        )
    lines += [
        "",
        f"Paired differences (a - b, error points) over shared (GAN seed, classifier seed) pairs; verdict: paired t, "
        f"Holm over the {len(comparisons)} comparisons, alpha={alpha}; smallest detectable = "
        f"(t(1-alpha/2) + t(0.8)) x sd/sqrt(n), 80 % power, from the observed paired sd"
        + (f"; {test_images} test images per classifier run" if test_images else "")
        + ".",
        "",
        "| a - b | pairs | mean diff | sd of diff | p | p (Holm) | verdict | smallest detectable | "
        f"pairs for {target:g} points | GAN seeds: mean diff each | GAN-level p |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for c in comparisons:
        t = c.test
        verdict = c.reason or ("significant" if t.significant else "not significant")
        lines.append(
            f"| {c.a} - {c.b} | {c.pairs} | {_f(c.mean_difference, '+.2f')} | {_f(c.sd_difference, '.2f')} | "
            f"{_p(t.p_value if t else None)} | {_p(t.p_adjusted if t else None)} | {verdict} | "
            f"{_f(t.min_detectable if t else None, '.2f')} | {c.seeds_for_target or '> 1000'} | "
            + ", ".join(f"{g}: {v:+.2f}" for g, v in c.per_gan.items())
            + f" | {_p(c.gan_test.p_value if c.gan_test else None)} |"
        )
    names = list(cells)
    all_cells = sorted({cell for v in cells.values() for cell in v})
    for title, unseen in (("Error per product x class cell (%)", False), ("The unseen cell(s)", True)):
        chosen = [
            cell for cell in all_cells if any(cells[n].get(cell, {}).get("unseen") for n in names) == unseen
        ]
        if not chosen:
            continue
        lines += ["", f"{title}, mean ± sd over classifier runs (test images per cell):", ""]
        lines.append("| cell | images | " + " | ".join(names) + " |")
        lines.append("|---|---:|" + "---:|" * len(names))
        for cell in chosen:
            images = next(cells[n][cell]["images"] for n in names if cell in cells[n])
            lines.append(
                f"| {cell} | {images} | "
                + " | ".join(_mean_sd(cells[n].get(cell, {}).get("errors", [])) for n in names)
                + " |"
            )
    return "\n".join(lines)


def _f(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def verdict_line(comparisons: list[Comparison]) -> str:
    """One line: each comparison's mean difference, Holm p and verdict."""
    parts = []
    for c in comparisons:
        if c.test is None:
            parts.append(f"{c.a} - {c.b}: {c.reason}")
            continue
        verdict = "significant" if c.test.significant else "not significant"
        parts.append(
            f"{c.a} - {c.b}: {c.mean_difference:+.2f} points over {c.pairs} pairs "
            f"(p_Holm {_p(c.test.p_adjusted)}, {verdict}; detectable {c.test.min_detectable:.2f})"
        )
    return "; ".join(parts)
