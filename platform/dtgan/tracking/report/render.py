"""Writing a report: Markdown and HTML for people, long-format cell/comparison frames for CSV and Parquet."""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd

from dtgan.tracking.report.cells import MISSING, Table


class Footnotes:
    """Numbered reasons, each reason once per table."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def mark(self, reason: str) -> str:
        if reason not in self.reasons:
            self.reasons.append(reason)
        return f"[{self.reasons.index(reason) + 1}]"


def _display_rows(table: Table, bold: tuple[str, str]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows of display strings and footnotes; ``bold`` wraps a significantly best cell."""
    notes = Footnotes()
    header = ["", *[c.label for c in table.columns]]
    body = []
    for row in table.display_rows:
        line = [row]
        for column in table.columns:
            cell = table.cell(row, column.key)
            text = cell.text if cell.values else f"{MISSING} {notes.mark(cell.missing_reason or 'missing')}"
            if cell.best:
                text = f"{bold[0]}{text}{bold[1]}"
            if column.metric in ("fid", "kid") and cell.values:
                text += (
                    f" {cell.ci_text}" if cell.ci else f" CI {MISSING} {notes.mark(cell.ci_missing_reason)}"
                )
            if cell.position is not None:
                text += f" pos {cell.position:.2f}" + (" not trained" if cell.not_trained else "")
            line.append(text)
        body.append(line)
    return header, body, notes.reasons


def _legend(table: Table) -> str:
    fidelity = any(c.metric in ("fid", "kid") for c in table.columns)
    best = ("highest", "higher") if table.higher_is_better else ("lowest", "lower")
    legend = (
        f"Bold: {best[0]} mean, significantly {best[1]} (seed-level, Holm-corrected) than every other cell of "
        "its column. Cells: mean ± sample std over training seeds (seeds"
    )
    if fidelity:
        return legend + "; N = generated images scored per run), [eval CI: bootstrap over images]."
    return legend + ")."


def _comparison_rows(table: Table) -> tuple[list[str], list[list[str]], list[str]]:
    notes = Footnotes()
    header = [
        "column",
        "A",
        "B",
        "mean A - B",
        "eval CI of A - B",
        "seed test",
        "p (Holm)",
        "smallest detectable",
        "significant",
    ]
    body = []
    for comp in table.comparisons:
        decimals = table.cell(comp.row_a, comp.column).decimals
        label = table.column(comp.column).label
        delta = f"{comp.delta:+.{decimals}f}" if comp.delta is not None else MISSING
        eval_ci = (
            f"[{comp.eval_ci[0]:.{decimals}f}, {comp.eval_ci[1]:.{decimals}f}]"
            if comp.eval_ci is not None
            else MISSING
        )
        if comp.test is None:
            body.append(
                [
                    label,
                    comp.row_a,
                    comp.row_b,
                    delta,
                    eval_ci,
                    f"n/a {notes.mark(comp.reason or '')}",
                    MISSING,
                    MISSING,
                    "n/a",
                ]
            )
            continue
        t = comp.test
        seeds = f"n={t.shared_seeds}" if t.kind == "paired t" else f"n={t.seeds[0]}/{t.seeds[1]}"
        body.append(
            [
                label,
                comp.row_a,
                comp.row_b,
                delta,
                eval_ci,
                f"{t.kind} p={t.p_value:.3g} ({seeds})",
                f"{t.p_adjusted:.3g}",
                f"{t.min_detectable:.{decimals}f}",
                comp.significant_text,
            ]
        )
    return header, body, notes.reasons


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *[line(r) for r in body]]


def markdown(
    title: str,
    preamble: Sequence[str],
    tables: Sequence[Table],
    plots: Sequence[str],
    comparisons: bool = True,
) -> str:
    """The whole report as Markdown: each table, its footnotes, then (``comparisons``) its pairwise comparisons.

    Without ``comparisons`` (the terminal), one line per table counts them and says where they are.
    """
    lines = [f"# {title}", "", *preamble, ""]
    for table in tables:
        header, body, reasons = _display_rows(table, ("**", "**"))
        lines += [f"## {table.title}", "", *_markdown_table(header, body), ""]
        lines += [f"[{i}] {r}  " for i, r in enumerate(reasons, 1)] + [f"Note: {n}  " for n in table.notes]
        lines += [_legend(table), ""]
        if table.comparisons and not comparisons:
            significant = sum(1 for c in table.comparisons if c.test is not None and c.test.significant)
            lines += [
                f"Pairwise comparisons: {len(table.comparisons)} ({significant} significant) in report.md.",
                "",
            ]
        elif table.comparisons:
            header, body, reasons = _comparison_rows(table)
            lines += [f"Pairwise comparisons ({table.test_name}):", "", *_markdown_table(header, body), ""]
            lines += [f"[{i}] {r}  " for i, r in enumerate(reasons, 1)] + [""]
    if plots:
        lines += ["## Plots", "", *[f"![{p}](plots/{p}.png)" for p in plots], ""]
    return "\n".join(lines).rstrip() + "\n"


def _html_table(header: list[str], body: list[list[str]]) -> list[str]:
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for row in body:
        cells = []
        for value in row:
            escaped = html.escape(value)
            cells.append(f"<td>{escaped.replace('&lt;b&gt;', '<b>').replace('&lt;/b&gt;', '</b>')}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return [*out, "</table>"]


def html_page(title: str, preamble: Sequence[str], tables: Sequence[Table], plots: Sequence[str]) -> str:
    """A self-contained HTML page with the same content as the Markdown report."""
    parts = [
        "<!DOCTYPE html>",
        "<html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *[f"<p>{html.escape(p)}</p>" for p in preamble],
    ]
    for table in tables:
        header, body, reasons = _display_rows(table, ("<b>", "</b>"))
        parts += [f"<h2>{html.escape(table.title)}</h2>", *_html_table(header, body)]
        parts += [f"<p>[{i}] {html.escape(r)}</p>" for i, r in enumerate(reasons, 1)]
        parts += [f"<p>Note: {html.escape(n)}</p>" for n in table.notes]
        parts += [f"<p>{html.escape(_legend(table))}</p>"]
        if table.comparisons:
            header, body, reasons = _comparison_rows(table)
            parts += [
                f"<p>Pairwise comparisons ({html.escape(table.test_name)}):</p>",
                *_html_table(header, body),
            ]
            parts += [f"<p>[{i}] {html.escape(r)}</p>" for i, r in enumerate(reasons, 1)]
    parts += [f"<p><img src='plots/{p}.png' alt='{p}'></p>" for p in plots]
    return "\n".join([*parts, "</body></html>"]) + "\n"


def cells_frame(tables: Sequence[Table]) -> pd.DataFrame:
    """Long format, one row per cell: numbers as numbers, missing as null with the reason."""
    records = []
    for table in tables:
        for row in table.display_rows:
            for column in table.columns:
                cell = table.cell(row, column.key)
                records.append(
                    {
                        "table": table.table_id,
                        "row": row,
                        "column": column.label,
                        "metric": column.metric,
                        "extractor": column.extractor,
                        "mean": cell.mean,
                        "std": cell.std,
                        "n": cell.n,
                        "seeds": ",".join(cell.values),
                        "ci_low": cell.ci[0] if cell.ci else None,
                        "ci_high": cell.ci[1] if cell.ci else None,
                        "best": cell.best,
                        "text": cell.text,
                        "missing_reason": cell.missing_reason,
                        "ci_missing_reason": cell.ci_missing_reason,
                        "role": cell.role,
                        "images": cell.n_images,
                        "n_real": cell.n_real,
                        "position": cell.position,
                        "not_trained": cell.not_trained,
                    }
                )
    return pd.DataFrame.from_records(
        records,
        columns=[
            "table",
            "row",
            "column",
            "metric",
            "extractor",
            "mean",
            "std",
            "n",
            "seeds",
            "ci_low",
            "ci_high",
            "best",
            "text",
            "missing_reason",
            "ci_missing_reason",
            "role",
            "images",
            "n_real",
            "position",
            "not_trained",
        ],
    )


def comparisons_frame(tables: Sequence[Table]) -> pd.DataFrame:
    """Long format, one row per pairwise comparison."""
    records = []
    for table in tables:
        for comp in table.comparisons:
            t = comp.test
            records.append(
                {
                    "table": table.table_id,
                    "column": table.column(comp.column).label,
                    "row_a": comp.row_a,
                    "row_b": comp.row_b,
                    "delta": comp.delta,
                    "ci_low": comp.eval_ci[0] if comp.eval_ci else None,
                    "ci_high": comp.eval_ci[1] if comp.eval_ci else None,
                    "p_value": t.p_value if t else None,
                    "shared_seeds": t.shared_seeds if t else None,
                    "significant": comp.significant_text,
                    "reason": comp.reason,
                    "test": t.kind if t else None,
                    "p_holm": t.p_adjusted if t else None,
                    "min_detectable": t.min_detectable if t else None,
                    "seeds_a": t.seeds[0] if t else None,
                    "seeds_b": t.seeds[1] if t else None,
                }
            )
    return pd.DataFrame.from_records(
        records,
        columns=[
            "table",
            "column",
            "row_a",
            "row_b",
            "delta",
            "ci_low",
            "ci_high",
            "p_value",
            "shared_seeds",
            "significant",
            "reason",
            "test",
            "p_holm",
            "min_detectable",
            "seeds_a",
            "seeds_b",
        ],
    )
