// Simple SVG charts built with DOM calls (createElementNS; no innerHTML, no inline styles:
// colours come from classes in monitor.css). Each chart is a <figure> with a caption, an SVG
// with role="img" and a <title>, and the exact numbers stay in the table under the charts.

const SVG = "http://www.w3.org/2000/svg";
const W = 640;
const H = 240;
const PAD = { left: 56, right: 12, top: 14, bottom: 42 };

function el(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  if (text !== null) node.textContent = String(text);
  return node;
}

/** A round tick step (1, 2, 2.5 or 5 x 10^n) giving about four ticks up to `max`. */
function niceStep(max, integer) {
  if (!(max > 0)) return 1;
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  let step = power * 10;
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * power >= rough) {
      step = m * power;
      break;
    }
  }
  return integer ? Math.max(1, Math.ceil(step)) : step;
}

/** The unit a chart of seconds reads best in: seconds while the largest value is under two
 * minutes, else minutes (ticks stay whole numbers of that unit). */
export function durationUnit(seconds) {
  const max = Math.max(0, ...seconds.filter((v) => typeof v === "number"));
  return max < 120 ? { divisor: 1, unit: "s" } : { divisor: 60, unit: "min" };
}

/**
 * A grouped bar chart.
 *   labels: x labels (one per group); series: [{name, className, values: [number|null]}];
 *   yFormat: number -> axis text; target: optional {value, label} drawn as a dashed line;
 *   integer: whole-number ticks; barLabels: each bar's value written on it (default: when
 *   the values fit the bars' width, so small numbers can be read without hovering), in
 *   valueFormat (default yFormat).
 */
export function barChart({
  title,
  labels,
  series,
  yFormat = String,
  target = null,
  caption = null,
  integer = false,
  barLabels = null,
  valueFormat = null,
}) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart-svg", preserveAspectRatio: "xMidYMid meet" });
  svg.append(el("title", {}, title));
  const values = series.flatMap((s) => s.values).filter((v) => typeof v === "number");
  const step = niceStep(Math.max(...values, target ? target.value : 0, 0), integer);
  const top = Math.max(step, Math.ceil(Math.max(...values, target ? target.value : 0, 0) / step) * step);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;

  for (let v = 0; v <= top + step / 2; v += step) {
    svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(el("text", { x: PAD.left - 6, y: y(v) + 4, class: "axis y" }, yFormat(v)));
  }
  const groupW = plotW / Math.max(labels.length, 1);
  const barW = Math.max(2, Math.min(28, (groupW * 0.8) / Math.max(series.length, 1)));
  const every = Math.ceil(labels.length / 10); // at most ~10 x labels
  const shown = valueFormat || yFormat;
  // a value is written on its bar when it fits the bar's width (about 7 px a character)
  const longest = Math.max(0, ...values.map((v) => String(shown(v)).length));
  const written = barLabels === null ? longest * 7 <= barW : barLabels;
  labels.forEach((label, i) => {
    const x0 = PAD.left + i * groupW + (groupW - barW * series.length) / 2;
    series.forEach((s, j) => {
      const v = s.values[i];
      if (typeof v !== "number") return;
      const bar = el("rect", {
        x: x0 + j * barW,
        y: y(v),
        width: Math.max(1, barW - 2),
        height: Math.max(0, y(0) - y(v)),
        class: `bar ${s.className}`,
      });
      bar.append(el("title", {}, `${label} · ${s.name}: ${shown(v)}`));
      svg.append(bar);
      if (written) {
        const cx = x0 + j * barW + Math.max(1, barW - 2) / 2;
        svg.append(el("text", { x: cx, y: y(v) - 3, class: "bar-label" }, shown(v)));
      }
    });
    if (i % every === 0) {
      svg.append(el("text", { x: PAD.left + i * groupW + groupW / 2, y: H - PAD.bottom + 16, class: "axis x" }, label));
    }
  });
  svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), class: "baseline" }));
  if (target && target.value <= top) {
    svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y(target.value), y2: y(target.value), class: "target" }));
    svg.append(el("text", { x: W - PAD.right, y: y(target.value) - 4, class: "axis target-label" }, target.label));
  }
  const legend = el("g", { class: "legend" });
  series.forEach((s, j) => {
    const x = PAD.left + j * 150;
    legend.append(el("rect", { x, y: H - 16, width: 12, height: 12, class: `bar ${s.className}` }));
    legend.append(el("text", { x: x + 16, y: H - 6, class: "axis legend-text" }, s.name));
  });
  svg.append(legend);
  const cap = document.createElement("figcaption");
  cap.textContent = caption || title;
  figure.append(cap, svg);
  return figure;
}
