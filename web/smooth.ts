/**
 * The page's smoothing: TensorBoard's, a debiased exponential moving average over the points
 * held (the first points are not pulled towards 0). The raw line is drawn faint under it.
 */

/** Debiased EMA with weight `w` (0: the values themselves); null and undefined points are left as they are. */
export function ema(ys: ReadonlyArray<number | null | undefined>, w: number): Array<number | null | undefined> {
  if (w <= 0) return ys.slice();
  const out = new Array<number | null | undefined>(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (v === null || v === undefined) {
      out[i] = v;
      continue;
    }
    last = last * w + (1 - w) * v;
    n++;
    out[i] = last / (1 - w ** n);
  }
  return out;
}
