"""The report as one self-contained HTML page with SVG charts (pygal), for a person to read.

The charts are inline SVG with pygal's scripts turned off (``js=[]``, its config script dropped):
the page loads and runs nothing, so it opens offline, from a mail attachment or behind the admin
token alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pygal
from jinja2 import Environment
from markupsafe import Markup
from pygal.etree import etree
from pygal.style import CleanStyle

from parley.data.report import Report, Slice

_STYLE = CleanStyle(font_family="system-ui, sans-serif", colors=("#2b8a3e", "#c92a2a", "#1864ab", "#e67700",
                                                                 "#5f3dc4", "#0b7285", "#862e9c"),
                    no_data_font_size=18, title_font_size=15)


def _config(title: str, **options: object) -> dict[str, object]:
    return {"title": title, "style": _STYLE, "js": [], "disable_xml_declaration": True, "width": 640,
            "height": 320, "explicit_size": True, "legend_at_bottom": True, "print_values": False,
            "no_data_text": "no data in this window", **options}


def _counts(chart: pygal.graph.graph.Graph, *series: Sequence[int]) -> None:
    """Whole-number ticks for counts (pygal would label 0.1, 0.2... up to a count of 1)."""
    top = max((max(values, default=0) for values in series), default=0)
    step = max(1, math.ceil(top / 5))
    chart.y_labels = list(range(0, top + step, step))


def _svg(chart: pygal.graph.graph.Graph) -> Markup:
    """The chart's SVG element, less the config script pygal always writes (there is no tooltip
    script to read it, and the admin page's CSP runs none): a page of pictures, nothing to run."""
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return Markup(etree.tostring(tree, encoding="unicode"))  # pygal escaped every label it drew


def containment_by_day(days: Sequence[Slice]) -> Markup:
    chart = pygal.StackedBar(**_config("Conversations per day, by who answered",
                                       x_label_rotation=30, show_minor_x_labels=len(days) <= 31))
    chart.x_labels = [day.key for day in days]
    if days:
        bot, person = [day.conversations - day.handed_off for day in days], [day.handed_off for day in days]
        _counts(chart, [b + p for b, p in zip(bot, person, strict=True)])
        chart.add("answered by the bot", bot)
        chart.add("handed to a person", person)
    return _svg(chart)


def containment_by_channel(channels: Sequence[Slice]) -> Markup:
    chart = pygal.HorizontalBar(**_config("Containment rate by channel (%)", range=(0, 100),
                                          value_formatter=lambda value: f"{value:.0f}%", print_values=True))
    for channel in channels:
        rate = channel.containment_rate
        chart.add(f"{channel.key} ({channel.conversations})", None if rate is None else round(100 * rate, 1))
    return _svg(chart)


def handoff_reasons(reasons: dict[str, int]) -> Markup:
    chart = pygal.Pie(**_config("Why conversations were handed off", inner_radius=0.45, print_values=True))
    for reason, count in reasons.items():
        chart.add(reason, count)
    return _svg(chart)


def thumbs_by_channel(channels: Sequence[Slice]) -> Markup:
    chart = pygal.Bar(**_config("Customers' verdicts on answers", print_values=True))
    voted = [channel for channel in channels if channel.thumbs_up or channel.thumbs_down]
    chart.x_labels = [channel.key for channel in voted]
    if voted:
        up, down = [channel.thumbs_up for channel in voted], [channel.thumbs_down for channel in voted]
        _counts(chart, up, down)
        chart.add("thumbs up", up)
        chart.add("thumbs down", down)
    return _svg(chart)


def ratings(counts: dict[int, int]) -> Markup:
    chart = pygal.Bar(**_config("Handoff ratings (CSAT: share of 4 and 5)", print_values=True,
                                show_legend=False))
    if counts:
        chart.x_labels = [str(score) for score in range(1, 6)]
        values = [counts.get(score, 0) for score in range(1, 6)]
        _counts(chart, values)
        chart.add("ratings", values)
    return _svg(chart)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


_PAGE = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parley report</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 2rem; color: #212529; max-width: 1340px; }
 .cards { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0 2rem; }
 .card { border: 1px solid #dee2e6; border-radius: .5rem; padding: .8rem 1.2rem; min-width: 11rem; }
 .card b { display: block; font-size: 1.8rem; }
 .charts { display: flex; flex-wrap: wrap; gap: 1rem; } figure { margin: 0; }
 table { border-collapse: collapse; margin: 1rem 0 2rem; } td, th { border: 1px solid #dee2e6; padding: .3rem .6rem; }
 th { background: #f1f3f5; text-align: left; } td.n { text-align: right; }
</style></head><body>
<h1>How the bot does</h1>
<p>{{ window }}{% if report.channel %}, channel {{ report.channel }}{% endif %}. Generated {{ generated }}.</p>
<div class="cards">
 <div class="card" id="containment"><b>{{ percent(report.total.containment_rate) }}</b>containment
   ({{ report.total.conversations }} conversations)</div>
 <div class="card" id="handoffs"><b>{{ report.total.handed_off }}</b>handed off</div>
 <div class="card" id="csat"><b>{{ percent(report.csat) }}</b>CSAT ({{ report.ratings.values()|sum }} ratings)</div>
 <div class="card" id="first-response"><b>{{ duration(report.first_response.p50) }}</b>first rep reply, p50
   (p90 {{ duration(report.first_response.p90) }})</div>
 <div class="card" id="resolution"><b>{{ duration(report.resolution.p50) }}</b>to resolution, p50
   (p90 {{ duration(report.resolution.p90) }})</div>
 <div class="card" id="thumbs"><b>{{ report.total.thumbs_up }} / {{ report.total.thumbs_down }}</b>thumbs up / down</div>
</div>
<div class="charts">{% for chart in charts %}<figure>{{ chart }}</figure>{% endfor %}</div>
<h2>Questions the bot could not answer well</h2>
<table id="questions"><tr><th>question (redacted)</th><th>times asked</th><th>why</th></tr>
{% for question in report.questions %}<tr><td>{{ question.text }}</td><td class="n">{{ question.count }}</td>
<td>{{ "unanswered" if question.kind == "unanswered" else "low confidence" }}</td></tr>
{% else %}<tr><td colspan="3">none in this window</td></tr>{% endfor %}</table>
<h2>By channel</h2>{{ table(report.by_channel) }}
<h2>By day</h2>{{ table(report.by_day) }}
</body></html>""")

_TABLE = Environment(autoescape=True).from_string("""<table><tr><th></th><th>conversations</th>
<th>handed off</th><th>containment</th><th>thumbs up</th><th>thumbs down</th></tr>
{% for part in parts %}<tr><th>{{ part.key }}</th><td class="n">{{ part.conversations }}</td>
<td class="n">{{ part.handed_off }}</td><td class="n">{{ percent(part.containment_rate) }}</td>
<td class="n">{{ part.thumbs_up }}</td><td class="n">{{ part.thumbs_down }}</td></tr>{% endfor %}</table>""")


def render(report: Report) -> str:
    """The whole page: figures, five charts and the tables by channel and by day."""
    def table(parts: Sequence[Slice]) -> Markup:
        return Markup(_TABLE.render(parts=parts, percent=_percent))

    since = report.since.strftime("%Y-%m-%d %H:%M UTC") if report.since else "the beginning"
    until = report.until.strftime("%Y-%m-%d %H:%M UTC") if report.until else "now"
    charts = (containment_by_day(report.by_day), containment_by_channel(report.by_channel),
              handoff_reasons(report.handoff_reasons), thumbs_by_channel(report.by_channel),
              ratings(report.ratings))
    return _PAGE.render(report=report, charts=charts, window=f"From {since} to {until}",
                        generated=report.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
                        percent=_percent, duration=_duration, table=table)

