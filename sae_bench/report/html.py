"""The leaderboard as one self-contained, interactive HTML page.

No network: CSS and script inline, plots as base64 PNG data URIs. Tables sort on a header click
(first click best first, by the metric's direction; again to reverse) and filter by a text box;
reference rows (supervised dictionary, no edit) stay on top, unranked. A header's tooltip is
the metric's description from the result documents; a missing value's tooltip is its reason.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence

from sae_bench.report.rows import Row, _sort_key
from sae_bench.report.structure import (
    AxisTable,
    Column,
    Report,
    cell,
    id_cells,
    id_columns,
    idle,
    reference_cells,
)
from sae_bench.report.text import units_line

_CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:1.5em;max-width:1500px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.4em 0 1em}
td,th{border:1px solid #ccc;padding:2px 6px;white-space:nowrap}
th{background:#eee;cursor:pointer;position:sticky;top:0}
th[data-dir]::after{content:" \\2195";color:#999}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
tbody.ref td{background:#f6f6ff;font-style:italic}
tr.front td.sae{font-weight:bold}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555;margin:.2em 0}.filter{margin:.3em 0}
img{max-width:100%;border:1px solid #ddd}
details{margin:.6em 0}.scroll{overflow-x:auto;max-width:100%}
code{background:#f3f3f3;padding:0 2px}
"""

# Sorting reads each cell's data-key (a number, ascending = best first, blank = missing, always
# last) and falls back to the cell text; rows keep their relative order on ties (stable sort).
_JS = """
function sortBy(th){
  const table=th.closest('table'),body=table.tBodies[table.tBodies.length-1];
  const col=Array.from(th.parentNode.children).indexOf(th);
  const asc=!th.classList.contains('asc');
  table.querySelectorAll('th').forEach(h=>h.classList.remove('asc','desc'));
  th.classList.add(asc?'asc':'desc');
  const rows=Array.from(body.rows).map((r,i)=>[r,i]);
  const key=r=>{const c=r.cells[col];const k=c.dataset.key;
    if(k===undefined)return c.textContent.trim().toLowerCase();
    return k===''?null:parseFloat(k);};
  rows.sort((a,b)=>{const x=key(a[0]),y=key(b[0]);
    if(x===null||y===null)return x===y?a[1]-b[1]:(x===null?1:-1);
    const c=x<y?-1:x>y?1:0;return (asc?c:-c)||a[1]-b[1];});
  rows.forEach(([r])=>body.appendChild(r));
}
function filterRows(input){
  const q=input.value.toLowerCase(),table=document.getElementById(input.dataset.table);
  const body=table.tBodies[table.tBodies.length-1];
  Array.from(body.rows).forEach(r=>{
    r.style.display=r.textContent.toLowerCase().includes(q)?'':'none';});
}
document.querySelectorAll('th').forEach(th=>th.addEventListener('click',()=>sortBy(th)));
document.querySelectorAll('input.filter').forEach(i=>i.addEventListener('input',()=>filterRows(i)));
"""

_ID_TIPS = {
    "rank": "rank on this axis within the unit (1 = best by the ranking above)",
    "front": "on the Pareto front of L0 against this axis's ranking: no SAE is both sparser "
             "and better",
    "sae": "run name", "architecture": "SAE architecture",
    "data": "training data, from the run name <arch>-<sparsity>-<data> (not recorded in results)",
    "unit": "evaluation unit: the nodes patched together",
}


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _prose(text: str) -> str:
    """Escape a note and show its `metric` names as code, as the Markdown page does."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _num_key(value: float | None, direction: str | None) -> str:
    """Ascending = best first; direction-less metrics sort by value."""
    if value is None or value != value:
        return ""
    k = _sort_key(value, direction if direction in ("one", "higher", "lower") else "lower")
    return repr(k[1])


def _th(name: str, tip: str, direction: str | None = None) -> str:
    d = f' data-dir="{_e(direction)}"' if direction else ""
    return f'<th title="{_e(tip)}"{d}>{_e(name)}</th>'


def _column_tip(col: Column) -> str:
    better = {"one": "closest to 1 is best", "higher": "higher is better",
              "lower": "lower is better"}.get(col.meta.direction or "", "no preferred direction")
    return f"{col.meta.description} ({better}; {col.meta.category})"


def _row_html(t: AxisTable, rank: int, row: Row) -> str:
    cls = ' class="front"' if (row.sae, row.unit) in t.front else ""
    cells = []
    for name, text in zip(id_columns(t), id_cells(t, rank, row), strict=True):
        key = f' data-key="{rank}"' if name == "rank" else ""
        css = ' class="sae"' if name == "sae" else ""
        cells.append(f"<td{css}{key}>{_e(text)}</td>")
    for col in t.columns:
        v = t.value(row, col)
        tip = row.reasons.get(col.name, "") if v is None else ""
        if idle(row, col.name):
            tip = ("the results mark this attribute not causally relevant at this node: "
                   "the value, in leaderboard.csv, is not a score")
        sup = row.supervised.get(col.name)
        if not tip and sup is not None and not col.derived:
            tip = f"supervised dictionary: {sup:.3f}"
        title = f' title="{_e(tip)}"' if tip else ""
        key = _num_key(v, col.meta.direction)
        cells.append(f'<td class="num" data-key="{key}"{title}>{_e(cell(t, row, col))}</td>')
    return f"<tr{cls}>" + "".join(cells) + "</tr>"


def _table_html(t: AxisTable, table_id: str) -> list[str]:
    out = [f'<p class="note">{_prose(t.ranking)}</p>',
           f'<input class="filter" type="search" placeholder="filter rows (e.g. topk, task)" '
           f'data-table="{table_id}">', '<div class="scroll">', f'<table id="{table_id}">',
           "<thead><tr>"]
    out += [_th(n, _ID_TIPS[n], "lower" if n == "rank" else None) for n in id_columns(t)]
    out += [_th(c.name, _column_tip(c), c.meta.direction or "none") for c in t.columns]
    out += ["</tr></thead>", '<tbody class="ref">']
    for label, unit, vals in t.references:
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in reference_cells(t, label, unit))
                   + "".join(f'<td class="num">{_e(vals.get(c.name, ""))}</td>'
                             for c in t.columns) + "</tr>")
    out += ["</tbody>", "<tbody>"]
    out += [_row_html(t, i, r) for r, i in zip(t.rows, t.ranks, strict=True)]
    out += ["</tbody>", "</table>", "</div>"]
    out += [f'<p class="note">{_prose(n)}</p>' for n in t.collapsed]
    return out


def _plain_table(header: Sequence[str], rows: Sequence[Sequence[str]], table_id: str
                 ) -> list[str]:
    out = [f'<input class="filter" type="search" placeholder="filter rows" '
           f'data-table="{table_id}">', f'<table id="{table_id}">', "<thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in header] + ["</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows]
    return out + ["</tbody>", "</table>"]


def _provenance(rep: Report, gid: str) -> list[str]:
    env = rep.group.environment
    out = ["<details><summary>Provenance</summary>", "<table>"]
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in env.items()]
    out.append("</table>")
    # Per SAE: its files, and only the fields that differ between runs (the rest is above).
    runs = rep.group.rows
    fields = sorted(k for k in {k for r in runs for k in r.provenance}
                    if k in ("result file", "SAE files")
                    or len({r.provenance.get(k) for r in runs}) > 1)
    rows = [[r.label] + [r.provenance.get(f, "") for f in fields] for r in runs]
    out += _plain_table(["sae", *fields], rows, f"{gid}-prov") + ["</details>"]
    return out


def render(reports: Sequence[Report]) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           "<title>SAE leaderboard</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           "<h1>SAE leaderboard</h1>",
           "<p>One section per (task, task version, model): results from different groups are "
           "never ranked together. No composite score: each axis is ranked by its own "
           "headline, and <b>front</b> marks SAEs on the Pareto front of L0 against it. Click a "
           "column header to sort (best first, again to reverse); hover a header for the "
           "metric's definition, a cell for the supervised value or why it is missing.</p>"]
    for gi, rep in enumerate(reports):
        gid = f"g{gi}"
        out.append(f"<h2>{_e(rep.group.key.title())}</h2>")
        out += [f"<p>{_e(units_line(rep))}</p>"]
        out += [f'<p class="note">{_prose(n)}</p>' for n in rep.not_relevant]
        for t in rep.tables:
            out.append(f"<h3>{_e(t.title)}</h3>")
            out += _table_html(t, f"{gid}-{t.axis}")
        for di, (title, header, rows) in enumerate(rep.details):
            out.append(f"<details><summary>{_e(title)}: {len(rows)} rows</summary>")
            out += (_plain_table(header, rows, f"{gid}-d{di}") if rows else ["<p>(none)</p>"])
            out.append("</details>")
        out.append("<h3>Plots</h3>")
        for p in rep.plots:
            data = base64.b64encode(p.png).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{_e(p.title)}">'
                       f"<figcaption>{_e(' '.join([p.title + '.', *p.notes]))}</figcaption>"
                       "</figure>")
        out += [f'<p class="note">{_prose(n)}</p>' for n in rep.plot_notes]
        out += _provenance(rep, gid)
    out += [f"<script>{_JS}</script>", "</body>", "</html>", ""]
    return "\n".join(out)
