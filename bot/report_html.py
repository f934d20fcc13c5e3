"""The governors' report as one self-contained HTML page that prints well, its charts drawn by matplotlib as inline SVG."""
from __future__ import annotations

import html
import io
import re
import threading
from datetime import datetime

import matplotlib

matplotlib.use("Agg")  # no display on a server: draw to files only
from matplotlib.figure import Figure as Drawing  # noqa: E402 - the backend must be chosen first

from flows.exports import CONCERN_KINDS, OUTCOME_WORDS, Figures  # noqa: E402
from flows.request import REASONS, VISIT_TYPES  # noqa: E402

# Matplotlib's settings are process-wide: two reports drawn at once (two heads, two threads) take turns.
_DRAWING = threading.Lock()

# The same figures give the same file: fixed ids in the SVG, text kept as text (smaller, selectable, prints sharp).
STYLE = {"svg.hashsalt": "visitsafe", "svg.fonttype": "none", "font.size": 10, "axes.spines.top": False, "axes.spines.right": False}
BAR = "#1f5f8b"


def bar_chart(title: str, counts: dict[str, int]) -> str:
    """A horizontal bar chart of counts as an inline <svg> element."""
    labels, values = list(counts)[::-1], list(counts.values())[::-1]
    out = io.StringIO()
    with _DRAWING, matplotlib.rc_context(STYLE):
        # A Figure without pyplot: nothing is kept in pyplot's global list of open figures.
        fig = Drawing(figsize=(6.5, 0.4 * max(len(labels), 1) + 0.9))
        ax = fig.subplots()
        bars = ax.barh(labels or ["(none)"], values or [0], color=BAR)
        ax.bar_label(bars, padding=3)
        ax.set_title(title, loc="left", fontweight="bold")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.margins(x=0.12)
        fig.tight_layout()
        fig.savefig(out, format="svg", metadata={"Date": None})
    svg = out.getvalue()
    # Inline in HTML: drop the XML prolog and doctype; keep the drawing.
    return svg[svg.index("<svg"):]


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th scope='row'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _named(counts: dict[str, int], words: dict[str, str]) -> dict[str, int]:
    return {words.get(k, k): v for k, v in counts.items()}


def render_html(f: Figures, school: str, title: str, made_at: datetime) -> str:
    """The report: headline figures, charts and tables; counts only, no names, addresses or pupils."""
    reasons, types, outcomes = _named(f.by_reason, REASONS), _named(f.by_type, VISIT_TYPES), _named(f.by_outcome, OUTCOME_WORDS)
    reports = {CONCERN_KINDS[k]: f.reports.get(k, 0) for k in CONCERN_KINDS}
    minutes = "none" if f.median_minutes is None else f"median {f.median_minutes:.0f} min, worst {f.worst_minutes:.0f} min"
    charts = [bar_chart("Visits by reason", reasons), bar_chart("Visits by outcome", outcomes), bar_chart("Safeguarding reports", reports)]
    sections = [
        ("Visits", _table([("Requested", str(f.requested)), ("Declined", str(f.declined)), ("Made", str(f.visits))]
                          + [(f"Type: {k}", str(v)) for k, v in types.items()])),
        ("Visits by reason", charts[0] + _table([(k, str(v)) for k, v in reasons.items()])),
        ("Visits by outcome", charts[1] + _table([(k, str(v)) for k, v in outcomes.items()])),
        ("Overdue visits", _table([
            ("Overdue events (the ladder's first alert)", str(f.overdue_events)),
            ("Confirmed safe", str(len(f.minutes_to_confirmation))),
            ("Time from first alert to confirmed safe", minutes),
            ("Emergencies (SOS, help, silent alarm)", str(f.emergencies)),
        ])),
        ("Incidents, concerns, unsafe exits and allegations", charts[2] + _table([(k, str(v)) for k, v in reports.items()])),
        ("Records on CPOMS", _table([(k, str(v)) for k, v in f.records.items()])),
    ]
    body = "".join(f"<section><h2>{html.escape(h)}</h2>{content}</section>" for h, content in sections)
    # Matplotlib's SVG sets fixed sizes in points: let each chart shrink to the page.
    body = re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r'<svg\1 class="chart"', body)
    return f"""<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: Arial, Helvetica, sans-serif; max-width: 46rem; margin: 2rem auto; color: #111; line-height: 1.4; }}
h1 {{ font-size: 1.5rem; }} h2 {{ font-size: 1.15rem; border-bottom: 1px solid #999; padding-bottom: .2rem; }}
table {{ border-collapse: collapse; margin: .5rem 0 1rem; }} th, td {{ text-align: left; padding: .2rem .8rem .2rem 0; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }}
svg.chart {{ width: 100%; height: auto; }}
section {{ break-inside: avoid; page-break-inside: avoid; }}
@page {{ size: A4; margin: 15mm; }} @media print {{ body {{ margin: 0; max-width: none; }} }}
</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{html.escape(school)}: home visits planned from {f.start:%d %B %Y} to {f.end:%d %B %Y}. Made by VisitSafe on {made_at:%d %B %Y at %H:%M}.
Counts only: no staff, families, addresses or pupils are named. Drills are never counted.</p>
{body}
</body></html>
"""
