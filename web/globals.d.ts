/** What the page finds as globals: uPlot (loaded by index.html as /uplot.js, before the modules). */
import type uPlotType from 'uplot';

declare global {
  const uPlot: typeof uPlotType;
  interface Window {
    /** The page's state, for a look from the console (and the browser test). */
    rowlog: unknown;
  }
}
