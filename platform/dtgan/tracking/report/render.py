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
    for row in table.rows:
        line = [row]
        for column in table.columns:
            cell = table.cell(row, column.key)
            text = cell.text if cell.values else f"{MISSING} {notes.mark(cell.missing_reason or 'missing')}"
            if cell.best:
                text = f"{bold[0]}{text}{bold[1]}"
            if column.metric in ("fid", "kid") and cell.values:
                text += f" {cell.ci_text}" if cell.ci else f" CI {MISSING} {notes.mark(cell.ci_missing_reason)}"
            line.append(text)
        body.append(line)
    return header, body, notes.reasons


def _comparison_rows(table: Table) -> tuple[list[str], list[list[str]], list[str]]:
    notes = Footnotes()
    header = ["column", "A", "B", "mean A - B", "test", "significant"]
    body = []
    for comp in table.comparisons:
        decimals = table.cell(comp.row_a, comp.column).decimals
        label = table.column(comp.column).label
        if comp.test is None:
            body.append([label, comp.row_a, comp.row_b, MISSING, f"n/a {notes.mark(comp.reason or '')}", "n/a"])
            continue
        t = comp.test
        detail = (f"CI [{t.ci[0]:.{decimals}f}, {t.ci[1]:.{decimals}f}]" if t.ci is not None
                  else f"p={t.p_value:.3g} (n={t.shared_seeds})")
        body.append([label, comp.row_a, comp.row_b, f"{t.delta:+.{decimals}f}", detail, comp.significant_text])
    return header, body, notes.reasons


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *[line(r) for r in body]]


def markdown(
    title: str, preamble: Sequence[str], tables: Sequence[Table], plots: Sequence[str], comparisons: bool = True
) -> str:
    """The whole report as Markdown: each table, its footnotes, then (``comparisons``) its pairwise comparisons.

    Without ``comparisons`` (the terminal), one line per table counts them and says where they are.
    """
    lines = [f"# {title}", "", *preamble, ""]
    for table in tables:
        header, body, reasons = _display_rows(table, ("**", "**"))
        lines += [f"## {table.title}", "", *_markdown_table(header, body), ""]
        lines += [f"[{i}] {r}  " for i, r in enumerate(reasons, 1)] + [f"Note: {n}  " for n in table.notes]
        lines += ["Bold: lowest mean, significantly lower than every other cell of its column. "
                  "Cells: mean ± sample std over seeds (n seeds)" + (", [bootstrap CI]." if any(
                      c.metric in ("fid", "kid") for c in table.columns) else "."), ""]
        if table.comparisons and not comparisons:
            significant = sum(1 for c in table.comparisons if c.test is not None and c.test.significant)
            lines += [f"Pairwise comparisons: {len(table.comparisons)} ({significant} significant) in report.md.", ""]
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
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
             "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}</style>",
             "</head><body>", f"<h1>{html.escape(title)}</h1>", *[f"<p>{html.escape(p)}</p>" for p in preamble]]
    for table in tables:
        header, body, reasons = _display_rows(table, ("<b>", "</b>"))
        parts += [f"<h2>{html.escape(table.title)}</h2>", *_html_table(header, body)]
        parts += [f"<p>[{i}] {html.escape(r)}</p>" for i, r in enumerate(reasons, 1)]
        parts += [f"<p>Note: {html.escape(n)}</p>" for n in table.notes]
        if table.comparisons:
            header, body, reasons = _comparison_rows(table)
            parts += [f"<p>Pairwise comparisons ({html.escape(table.test_name)}):</p>", *_html_table(header, body)]
            parts += [f"<p>[{i}] {html.escape(r)}</p>" for i, r in enumerate(reasons, 1)]
    parts += [f"<p><img src='plots/{p}.png' alt='{p}'></p>" for p in plots]
    return "\n".join([*parts, "</body></html>"]) + "\n"


def cells_frame(tables: Sequence[Table]) -> pd.DataFrame:
    """Long format, one row per cell: numbers as numbers, missing as null with the reason."""
    records = []
    for table in tables:
        for row in table.rows:
            for column in table.columns:
                cell = table.cell(row, column.key)
                records.append({
                    "table": table.table_id, "row": row, "column": column.label, "metric": column.metric,
                    "extractor": column.extractor, "mean": cell.mean, "std": cell.std, "n": cell.n,
                    "seeds": ",".join(cell.values), "ci_low": cell.ci[0] if cell.ci else None,
                    "ci_high": cell.ci[1] if cell.ci else None, "best": cell.best, "text": cell.text,
                    "missing_reason": cell.missing_reason, "ci_missing_reason": cell.ci_missing_reason,
                })
    return pd.DataFrame.from_records(records, columns=[
        "table", "row", "column", "metric", "extractor", "mean", "std", "n", "seeds", "ci_low", "ci_high",
        "best", "text", "missing_reason", "ci_missing_reason"])


def comparisons_frame(tables: Sequence[Table]) -> pd.DataFrame:
    """Long format, one row per pairwise comparison."""
    records = []
    for table in tables:
        for comp in table.comparisons:
            t = comp.test
            records.append({
                "table": table.table_id, "column": table.column(comp.column).label, "row_a": comp.row_a,
                "row_b": comp.row_b, "delta": t.delta if t else None,
                "ci_low": t.ci[0] if t and t.ci else None, "ci_high": t.ci[1] if t and t.ci else None,
                "p_value": t.p_value if t else None, "shared_seeds": t.shared_seeds if t else None,
                "significant": comp.significant_text, "reason": comp.reason,
            })
    return pd.DataFrame.from_records(records, columns=[
        "table", "column", "row_a", "row_b", "delta", "ci_low", "ci_high", "p_value", "shared_seeds",
        "significant", "reason"])
