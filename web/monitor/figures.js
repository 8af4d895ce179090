// Response-time figures of one prison per local day (GET /stats?prison=&from=&to=): two SVG
// charts (first-response median and 90th percentile against the target; volumes) and the
// table with every number, which is also what a screen reader reads.

import { api } from "/static/lib/api.js";
import { h, clear } from "/static/lib/dom.js";
import { t, errorText, formatDate, formatDateTime, formatDuration, formatNumber, onLocaleChange } from "/static/lib/i18n.js";
import { categoryLabel } from "/static/console/flags.js";
import { barChart, durationUnit } from "/static/monitor/charts.js";
import { loadPeriod, periodView } from "/static/monitor/period.js";

const DEFAULT_DAYS = 14;

/** "YYYY-MM-DD" of a Date in the bureau's zone. */
function localDay(date, timeZone = "Asia/Shanghai") {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(date);
  return parts; // en-CA formats as YYYY-MM-DD
}

function shortDay(day) {
  const [, m, d] = day.split("-");
  return `${Number(m)}/${Number(d)}`;
}

export class Figures {
  constructor({ prison, target = 300 }) {
    this.prison = prison;
    this.target = target;
    this.form = document.getElementById("figures-form");
    this.error = document.getElementById("figures-error");
    this.charts = document.getElementById("charts");
    this.table = document.getElementById("figures-table");
    this.flagTable = document.getElementById("flag-figures");
    this.periodBox = document.getElementById("period");
    this.data = null;
    this.period = null;
    const today = new Date();
    this.form.elements.to.value = localDay(today);
    this.form.elements.from.value = localDay(new Date(today.getTime() - (DEFAULT_DAYS - 1) * 86400000));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.load();
    });
    onLocaleChange(() => this.render());
  }

  setPrison(prison, target) {
    this.prison = prison;
    if (target) this.target = target;
    this.data = null;
  }

  async load() {
    this.error.textContent = "";
    const range = { prison: this.prison, from: this.form.elements.from.value, to: this.form.elements.to.value };
    try {
      [this.data, this.period] = await Promise.all([api.get("/stats", range), loadPeriod(range)]);
    } catch (err) {
      this.error.textContent = errorText(err);
      this.data = null;
      this.period = null;
    }
    this.render();
  }

  render() {
    clear(this.charts);
    clear(this.table);
    clear(this.flagTable);
    clear(this.periodBox);
    const periodOf = this.period && (this.period.prisons || []).find((p) => p.prison_id === this.prison);
    if (periodOf) this.periodBox.append(periodView(periodOf));
    const now = document.getElementById("figures-now");
    if (!this.data) {
      now.textContent = "";
      return;
    }
    const prison = (this.data.prisons || []).find((p) => p.prison_id === this.prison) || (this.data.prisons || [])[0];
    if (!prison) return;
    now.textContent = t("monitor.figures.now", {
      at: formatDateTime(this.data.at),
      n: prison.waiting,
      longest: prison.longest_wait_s === null ? "—" : formatDuration(prison.longest_wait_s),
    });
    const days = prison.days;
    const labels = days.map((d) => shortDay(d.day));
    // seconds or minutes, whichever reads best; whole-number ticks; bars labelled in words
    const unit = durationUnit(days.flatMap((d) => [d.median_s, d.p90_s]));
    const inUnit = (s) => (s === null || s === undefined ? null : s / unit.divisor);
    this.charts.append(
      barChart({
        title: t(unit.unit === "s" ? "period.responseChartSeconds" : "period.responseChartMinutes"),
        labels,
        series: [
          { name: t("monitor.figures.median"), className: "median", values: days.map((d) => inUnit(d.median_s)) },
          { name: t("monitor.figures.p90"), className: "p90", values: days.map((d) => inUnit(d.p90_s)) },
        ],
        yFormat: (v) =>
          unit.unit === "s" ? t("time.s", { s: formatNumber(v) }) : t("monitor.figures.minutes", { m: formatNumber(v) }),
        valueFormat: (v) => formatNumber(Math.round(v)), // in the chart's unit, as its title says
        integer: true,
        target: { value: this.target / unit.divisor, label: t("monitor.figures.target", { t: formatDuration(this.target) }) },
      }),
      barChart({
        title: t("monitor.figures.volumeChart"),
        labels,
        series: [
          { name: t("monitor.figures.cycles"), className: "cycles", values: days.map((d) => d.cycles) },
          { name: t("monitor.figures.answered"), className: "answered", values: days.map((d) => d.answered) },
          { name: t("monitor.figures.resolved"), className: "resolved", values: days.map((d) => d.resolved) },
        ],
        yFormat: (v) => formatNumber(v),
        integer: true,
      }),
    );
    const cols = [
      ["monitor.figures.day", (d) => formatDate(d.day)],
      ["monitor.figures.conversations", (d) => formatNumber(d.conversations)],
      ["monitor.figures.messages", (d) => formatNumber(d.messages)],
      ["monitor.figures.cycles", (d) => formatNumber(d.cycles)],
      ["monitor.figures.answered", (d) => formatNumber(d.answered)],
      ["monitor.figures.median", (d) => (d.median_s === null ? "—" : formatDuration(d.median_s))],
      ["monitor.figures.p90", (d) => (d.p90_s === null ? "—" : formatDuration(d.p90_s))],
      ["monitor.figures.within5", (d) => (d.within_5_min === null ? "—" : formatNumber(d.within_5_min, { style: "percent", maximumFractionDigits: 0 }))],
      ["monitor.figures.resolved", (d) => formatNumber(d.resolved)],
    ];
    this.table.append(
      h("caption", {}, t("monitor.figures.table", { prison: prison.name })),
      h("thead", {}, h("tr", {}, cols.map(([k], i) => h("th", { scope: "col", class: i ? "num" : null }, t(k))))),
      h(
        "tbody",
        {},
        days.map((d) => h("tr", { data: { day: d.day } }, cols.map(([, f], i) => h("td", { class: i ? "num" : null }, f(d))))),
      ),
    );
    this.renderFlags(prison);
  }

  /** Keyword flags in the range per category (reviewed and not), and the queue now. */
  renderFlags(prison) {
    const rows = prison.flags || [];
    const cols = ["monitor.flags.category", "monitor.flags.flagged", "monitor.flags.reviewed", "monitor.flags.unreviewed"];
    this.flagTable.append(
      h("caption", {}, t("monitor.flags.table", { n: prison.flags_unreviewed || 0 })),
      h("thead", {}, h("tr", {}, cols.map((k, i) => h("th", { scope: "col", class: i ? "num" : null }, t(k))))),
      h(
        "tbody",
        {},
        rows.length
          ? rows.map((r) =>
              h(
                "tr",
                { data: { category: r.category } },
                h("td", {}, categoryLabel(r.category)),
                [r.flagged, r.reviewed, r.unreviewed].map((n) => h("td", { class: "num" }, formatNumber(n))),
              ),
            )
          : h("tr", {}, h("td", { colspan: 4 }, t("monitor.flags.none"))),
      ),
    );
  }
}
