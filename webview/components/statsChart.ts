/**
 * The live CPU / memory chart (uPlot on a canvas, which is fine for a chart; the numbers it shows are also
 * written as text next to it for screen readers and tests). Colours come from the VS Code theme and are
 * read again when the theme changes.
 */
import uPlot from 'uplot';
import uplotCss from 'uplot/dist/uPlot.min.css';
import { h, setText } from './dom';
import { formatBytes } from './format';
import type { StatsSeries } from '../panel/runModel';

export { uplotCss };

const HEIGHT = 120;

function themeVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

export class StatsChart {
  readonly el: HTMLElement;
  private readonly plotEl: HTMLDivElement;
  private readonly nowEl: HTMLSpanElement;
  private plot: uPlot | undefined;
  private series: StatsSeries | undefined;
  private width = 0;

  constructor() {
    this.nowEl = h('span', { id: 'stats-now', class: 'stats-now' }, 'No samples yet.');
    this.plotEl = h('div', { class: 'stats-plot', role: 'img', 'aria-label': 'CPU and memory over time' });
    this.el = h('section', { id: 'stats-chart', class: 'stats-chart', 'aria-label': 'CPU and memory' },
      h('div', { class: 'section-title' }, 'CPU and memory ', this.nowEl), this.plotEl);
    new ResizeObserver(() => {
      const w = Math.floor(this.plotEl.clientWidth);
      if (w > 0 && w !== this.width) {
        this.width = w;
        if (this.plot) this.plot.setSize({ width: w, height: HEIGHT });
        else this.update(this.series);
      }
    }).observe(this.plotEl);
    // VS Code swaps the body's theme class (and the --vscode-* values) without reloading the webview.
    new MutationObserver(() => this.recreate()).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  }

  update(s: StatsSeries | undefined): void {
    this.series = s;
    if (!s || s.t.length === 0) return;
    const i = s.t.length - 1;
    const limit = s.memoryLimitMiB > 0 ? ` of ${formatBytes(s.memoryLimitMiB * 1048576)}` : '';
    const now = `CPU ${s.cpuPercent[i].toFixed(0)}% · memory ${formatBytes(s.memoryMiB[i] * 1048576)}${limit}`;
    setText(this.nowEl, now);
    this.plotEl.setAttribute('aria-label', `CPU and memory over time; now ${now}`);
    if (this.width === 0) return;
    const data: uPlot.AlignedData = [s.t, s.cpuPercent, s.memoryMiB];
    if (!this.plot) this.create(data);
    else this.plot.setData(data);
  }

  /** Another run takes the panel: no samples yet. */
  clear(): void {
    this.series = undefined;
    this.plot?.destroy();
    this.plot = undefined;
    setText(this.nowEl, 'No samples yet.');
    this.plotEl.setAttribute('aria-label', 'CPU and memory over time');
  }

  private recreate(): void {
    this.plot?.destroy();
    this.plot = undefined;
    this.update(this.series);
  }

  private create(data: uPlot.AlignedData): void {
    const fg = themeVar('--vscode-foreground', '#ccc');
    const grid = themeVar('--vscode-editorWidget-border', 'rgba(128,128,128,0.25)');
    const cpu = themeVar('--vscode-charts-blue', '#3794ff');
    const mem = themeVar('--vscode-charts-orange', '#d18616');
    const font = `11px ${themeVar('--vscode-font-family', 'sans-serif')}`;
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font };
    const limit = () => this.series?.memoryLimitMiB ?? 0;
    this.plot = new uPlot({
      width: this.width,
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        // One sample has no span of its own: uPlot would stretch it over years. Show a minute around it.
        x: { time: true, range: (_u, min, max) => (max - min < 1 ? [min - 30, max + 30] : [min, max]) },
        cpu: { range: (_u, _min, max) => [0, Math.max(100, Math.ceil(max / 100) * 100)] },
        mem: { range: (_u, _min, max) => [0, Math.max(limit(), max, 1)] },
      },
      series: [
        {},
        { label: 'CPU %', scale: 'cpu', stroke: cpu, width: 1.5 },
        { label: 'Memory MiB', scale: 'mem', stroke: mem, width: 1.5 },
      ],
      axes: [
        { ...axis },
        { ...axis, scale: 'cpu', values: (_u, v) => v.map((x) => `${x}%`), size: 44 },
        { ...axis, scale: 'mem', side: 1, values: (_u, v) => v.map((x) => formatBytes(x * 1048576)), size: 64 },
      ],
    }, data, this.plotEl);
  }
}
