"""The dashboard's charts: received by outcome, Braze's answers, delivery delay; 48 hours by the
hour or 30 days by the day. Reads ``selectors_charts``, draws with ``charts``, labels in the
reader's language (numbers, dates, durations) and gives each chart a table as its text
alternative."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from integrations import charts
from integrations.selectors_charts import SPANS, Bucket, hub_chart_buckets

RECEIVED_LABELS = {
    "delivered": gettext_lazy("Delivered"),
    "pending": gettext_lazy("Waiting"),
    "held": gettext_lazy("Held back"),
    "failed": gettext_lazy("Failed"),
    "ignored": gettext_lazy("Ignored"),
}
ANSWER_LABELS = {
    "2xx": gettext_lazy("Accepted (2xx)"),
    "4xx": gettext_lazy("Refused (4xx)"),
    "429": gettext_lazy("Rate limited (429)"),
    "5xx": gettext_lazy("Braze error (5xx)"),
    "network": gettext_lazy("No answer"),
}


@dataclass(frozen=True)
class ChartBlock:
    key: str
    title: str
    summary: str
    chart: charts.Chart
    legend: list[tuple[str, str]]
    table_head: list[str]
    table_rows: list[list[str]]


def number(value: float) -> str:
    return formats.number_format(round(value), use_l10n=True, force_grouping=True)


def duration(seconds: float | None) -> str:
    """A delay as a person reads it: 0.4 s, 12 s, 3 min, 2.5 h."""
    if seconds is None:
        return "—"
    if seconds < 10:
        shown = formats.number_format(round(seconds, 1), decimal_pos=1, use_l10n=True)
        return _("%(n)s s") % {"n": shown}
    if seconds < 120:
        return _("%(n)s s") % {"n": number(seconds)}
    if seconds < 7200:
        return _("%(n)s min") % {"n": number(seconds / 60)}
    hours = formats.number_format(round(seconds / 3600, 1), decimal_pos=1, use_l10n=True)
    return _("%(n)s h") % {"n": hours}


def _labels(buckets: list[Bucket], span: str) -> tuple[list[str], list[str]]:
    """Axis labels (every 6 hours, or every 5th day back from today; others empty) and full
    labels for tooltips and table rows."""
    # Translators: a PHP-style date format for a day on a chart's axis (e.g. "j. M" in German).
    day_format = pgettext("chart axis day", "M j")
    axis, full = [], []
    for index, bucket in enumerate(buckets):
        local = timezone.localtime(bucket.start)
        if span == "30d":
            shown = (len(buckets) - 1 - index) % 5 == 0
            axis.append(formats.date_format(local, day_format) if shown else "")
            full.append(formats.date_format(local, "SHORT_DATE_FORMAT"))
        else:
            if local.hour % 6:
                axis.append("")
            else:
                axis.append(formats.date_format(local, day_format) if local.hour == 0
                            else formats.time_format(local, "H:i"))
            full.append(formats.date_format(local, "SHORT_DATETIME_FORMAT"))
    return axis, full


def hub_charts(*, hub_id: int, span: str, now: dt.datetime | None = None) -> dict[str, Any]:
    span = span if span in SPANS else SPANS[0]
    buckets = hub_chart_buckets(hub_id=hub_id, span=span, now=now)
    axis, full = _labels(buckets, span)
    every = 1
    per = _("per day") if span == "30d" else _("per hour")
    return {
        "span": span,
        "blocks": [
            _received_block(buckets, axis, full, every, per),
            _answers_block(buckets, axis, full, every, per),
            _delay_block(buckets, axis, full, every, per),
        ],
    }


def _received_block(buckets, axis, full, every, per) -> ChartBlock:
    series = [charts.Series(key=part, label=str(label),
                            values=[b.received[part] for b in buckets])
              for part, label in RECEIVED_LABELS.items()]
    backfill = [b.backfill_received for b in buckets]
    if any(backfill):
        series.append(charts.Series(key="backfill", label=_("Backfilled"), values=backfill))
    delivered = charts.Series(key="line", label=_("Delivered in that time"),
                              values=[b.delivered for b in buckets])
    chart = charts.stacked_bars(series, axis, label_every=every, y_format=number,
                                overlay=[delivered], titles=full)
    received = sum(b.received_total for b in buckets)
    return ChartBlock(
        key="received",
        title=_("Received, by what became of it (%(per)s)") % {"per": per},
        summary=_("%(received)s received, %(delivered)s delivered in this time.") % {
            "received": number(received), "delivered": number(sum(delivered.values))},
        chart=chart,
        legend=[(s.key, s.label) for s in series] + [("line", delivered.label)],
        table_head=[_("Time"), _("Received"), *[s.label for s in series], delivered.label],
        table_rows=[[full[i], number(buckets[i].received_total),
                     *[number(s.values[i]) for s in series], number(delivered.values[i])]
                    for i in range(len(buckets))],
    )


def _answers_block(buckets, axis, full, every, per) -> ChartBlock:
    series = [charts.Series(key=f"a{part}", label=str(label),
                            values=[b.answers[part] for b in buckets])
              for part, label in ANSWER_LABELS.items()]
    chart = charts.stacked_bars(series, axis, label_every=every, y_format=number, titles=full)
    totals = {s.key: sum(s.values) for s in series}
    return ChartBlock(
        key="answers",
        title=_("Braze's answers (%(per)s)") % {"per": per},
        summary=_("%(requests)s requests to Braze: %(ok)s accepted, %(limited)s rate limited, "
                  "%(other)s refused or failed.") % {
            "requests": number(sum(totals.values())), "ok": number(totals["a2xx"]),
            "limited": number(totals["a429"]),
            "other": number(sum(totals.values()) - totals["a2xx"] - totals["a429"])},
        chart=chart,
        legend=[(s.key, s.label) for s in series],
        table_head=[_("Time"), *[s.label for s in series]],
        table_rows=[[full[i], *[number(s.values[i]) for s in series]]
                    for i in range(len(buckets))],
    )


def _delay_block(buckets, axis, full, every, per) -> ChartBlock:
    p50 = charts.Series(key="p50", label=_("Median (p50)"),
                        values=[b.delay_percentile(0.5) for b in buckets])
    p95 = charts.Series(key="p95", label=_("95th percentile (p95)"),
                        values=[b.delay_percentile(0.95) for b in buckets])
    chart = charts.lines([p50, p95], axis, label_every=every, y_format=duration, titles=full)
    whole = [sum(column) for column in zip(*(b.delay_histogram for b in buckets), strict=True)]
    overall = Bucket(start=buckets[0].start, delay_histogram=whole)
    return ChartBlock(
        key="delay",
        title=_("Time from receipt to delivery (%(per)s)") % {"per": per},
        summary=_("Over this time: median %(p50)s, 95th percentile %(p95)s.") % {
            "p50": duration(overall.delay_percentile(0.5)),
            "p95": duration(overall.delay_percentile(0.95))},
        chart=chart,
        legend=[("p50", p50.label), ("p95", p95.label)],
        table_head=[_("Time"), _("Delivered"), p50.label, p95.label],
        table_rows=[[full[i], number(buckets[i].delivered), duration(p50.values[i]),
                     duration(p95.values[i])] for i in range(len(buckets))],
    )
