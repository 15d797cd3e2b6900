"""Plotly figures for the UI, returned as plain dicts (the figure JSON) that templates embed with ``json_script``.

- the phase diagram of a chemical system in one scheme, drawn by pymatgen's ``PDPlotter(backend="plotly")`` from the
  stored hull entries (formation energies per atom; elements at 0);
- the growth of the stable materials over time (GNoME's "known stable crystals" picture for this installation);
- per-round campaign charts.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef
from django.db.models.functions import TruncDate

from catalog.models import HullEntry, Material, MaterialOrigin, Scheme
from catalog.selectors import hull_entries_near

logger = logging.getLogger(__name__)

MAX_PLOT_ELEMENTS = 4  # PDPlotter draws binary, ternary and quaternary diagrams
PLOT_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13}


def _figure_dict(fig) -> dict:
    return json.loads(fig.to_json())


@dataclass
class PhaseDiagramData:
    chemsys: str
    scheme: Scheme
    entries: list[HullEntry] = field(default_factory=list)
    figure: dict | None = None
    message: str = ""

    @property
    def stable(self) -> list[HullEntry]:
        return [e for e in self.entries if e.is_stable]


def phase_diagram(elements, scheme: Scheme, show_unstable: float = 0.1, highlight: str = "") -> PhaseDiagramData:
    """Phase diagram data for ``elements`` in ``scheme``; ``figure`` is None (with ``message``) when it cannot be drawn."""
    from pymatgen.analysis.phase_diagram import PDEntry, PDPlotter, PhaseDiagram
    from pymatgen.core import Composition

    elements = sorted(elements)
    chemsys = "-".join(elements)
    data = PhaseDiagramData(chemsys=chemsys, scheme=scheme)
    if not scheme.builds_hull:
        data.message = f"{scheme.name} is a dataset stability value, not a hull: no phase diagram."
        return data
    data.entries = hull_entries_near(elements, scheme, show_unstable, highlight)
    if not data.entries:
        data.message = f"No hull has been computed for {chemsys} in {scheme.name} yet."
        return data
    if not 2 <= len(elements) <= MAX_PLOT_ELEMENTS:
        data.message = "Phase diagrams are drawn for binary, ternary and quaternary systems; the table lists the phases."
        return data
    pd_entries = []
    for hull_entry in data.entries:
        comp = Composition(hull_entry.energy_record.composition)
        name = hull_entry.material.formula_reduced if hull_entry.material else comp.reduced_formula
        pd_entry = PDEntry(comp, hull_entry.formation_energy_per_atom * comp.num_atoms, name=name)
        pd_entry.entry_id = hull_entry.material.public_id if hull_entry.material else "reference"  # shown on hover
        pd_entries.append(pd_entry)
    present = {el.symbol for e in pd_entries if e.composition.is_element for el in e.composition.elements}
    for symbol in elements:
        if symbol not in present:  # formation energies: the elements are the zero
            pd_entries.append(PDEntry(Composition(symbol), 0.0, name=symbol))
    try:
        pd = PhaseDiagram(pd_entries)
        plotter = PDPlotter(pd, backend="plotly", show_unstable=show_unstable)
        fig = plotter.get_plot()
        _label_ternary_phases(fig)
        fig.update_layout(
            autosize=True, width=None, height=None, font=PLOT_FONT, margin={"l": 40, "r": 20, "t": 30, "b": 40}
        )
        data.figure = _figure_dict(fig)
    except Exception as exc:  # noqa: BLE001 - a plotting failure must not take the page down
        logger.exception("phase diagram of %s in %s failed", chemsys, scheme.name)
        data.message = f"The phase diagram could not be drawn: {exc}"
    return data


def _label_ternary_phases(fig) -> None:
    """PDPlotter's 2D ternary names only the corners; write the stable compounds' formulas next to their points."""
    for trace in fig.data:
        if trace.type == "scatterternary" and trace.name == "Stable" and trace.hovertext:
            labels = [str(h).split(" (", 1)[0] for h in trace.hovertext]
            # the corners are labelled by the axes
            trace.text = [label if sum(1 for ch in label if ch.isupper()) > 1 else "" for label in labels]
            trace.mode = "markers+text"
            trace.textposition = "top right"


def stable_over_time_figure() -> dict | None:
    """Cumulative count of stable materials by the day they entered the catalog, all and campaign discoveries."""
    import plotly.graph_objects as go

    stable = Material.objects.filter(is_stable=True).order_by()
    campaign_origin = MaterialOrigin.objects.filter(material=OuterRef("pk"), kind=MaterialOrigin.Kind.CAMPAIGN)
    rows = list(
        stable.annotate(day=TruncDate("created_at"), by_campaign=Exists(campaign_origin))
        .values("day", "by_campaign")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    if not rows:
        return None
    days = sorted({r["day"] for r in rows})
    per_day = {(r["day"], r["by_campaign"]): r["n"] for r in rows}
    total, found, y_total, y_found = 0, 0, [], []
    for day in days:
        total += per_day.get((day, True), 0) + per_day.get((day, False), 0)
        found += per_day.get((day, True), 0)
        y_total.append(total)
        y_found.append(found)
    from datetime import timedelta

    # start from zero the day before the first material so that one day of data still draws a step
    days = [days[0] - timedelta(days=1), *days]
    y_total, y_found = [0, *y_total], [0, *y_found]
    x = [d.isoformat() for d in days]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=y_total, mode="lines+markers", name="all stable", line={"shape": "hv"}))
    fig.add_trace(
        go.Scatter(x=x, y=y_found, mode="lines+markers", name="discovered by campaigns", line={"shape": "hv"})
    )
    fig.update_layout(
        font=PLOT_FONT,
        margin={"l": 50, "r": 20, "t": 10, "b": 40},
        yaxis_title="stable materials",
        legend={"orientation": "h", "y": 1.12},
        height=320,
    )
    return _figure_dict(fig)


def campaign_round_figures(rounds) -> dict[str, dict]:
    """Hit rate, model MAE and new stable materials per round."""
    import plotly.graph_objects as go

    x = [r.index for r in rounds]
    specs = {
        "hit_rate": ("hit rate (stable / DFT done)", [r.hit_rate for r in rounds], "hit rate"),
        "mae": ("model MAE", [r.model_mae for r in rounds], "eV/atom"),
        "new_stable": ("new stable materials", [r.n_new_stable for r in rounds], "materials"),
    }
    figures = {}
    for key, (title, y, unit) in specs.items():
        kind = go.Bar if key == "new_stable" else go.Scatter
        trace = kind(x=x, y=y, name=title) if kind is go.Bar else kind(x=x, y=y, name=title, mode="lines+markers")
        fig = go.Figure(trace)
        fig.update_layout(
            title={"text": title, "x": 0.02},
            font=PLOT_FONT,
            height=240,
            margin={"l": 50, "r": 10, "t": 36, "b": 36},
            xaxis={"title": "round", "dtick": 1},
            yaxis={"title": unit, "rangemode": "tozero"},
        )
        if key == "hit_rate":
            fig.update_yaxes(range=[0, 1], tickformat=".0%")
        figures[key] = _figure_dict(fig)
    return figures
