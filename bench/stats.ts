/**
 * Small statistics for the benches: medians, the paired comparison of two builds run in
 * alternation (bench/ab.ts), and a least-squares slope (bench/soak.ts). On the development VM one
 * build's time varies by +-15% from one minute to the next, so a change is judged by how many
 * alternating pairs it wins, not by one run each.
 */

/** The median (the mean of the two middle values of an even count); NaN for no values. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Two-sided sign test: the probability of a split at least as uneven as `k` of `n` pairs going one
 * way when each pair is a fair coin (no difference between the builds). Exact binomial sum.
 */
export function signTestP(k: number, n: number): number {
  if (!Number.isInteger(k) || !Number.isInteger(n) || n < 0 || k < 0 || k > n) throw new RangeError(`sign test needs 0 <= k <= n (k ${k}, n ${n})`);
  if (n === 0) return 1;
  const extreme = Math.min(k, n - k);
  let tail = 0;
  let c = 1; // C(n, i), built up term by term
  for (let i = 0; i <= extreme; i++) {
    if (i > 0) c = (c * (n - i + 1)) / i;
    tail += c;
  }
  return Math.min(1, (2 * tail) / 2 ** n);
}

export interface PairedSummary {
  pairs: number;
  medianA: number;
  medianB: number;
  /** Median over the pairs of b / a - 1 (negative: B took less). */
  medianChange: number;
  /** Median over the pairs of b - a: the change to use when a pair's figures can be near zero or below (a difference of two timings). */
  medianDifference: number;
  /** Pairs in which B took less than A, and more; ties count in neither. */
  bLess: number;
  bMore: number;
  /** Sign test over the pairs that differ. */
  p: number;
}

/** Compares measurements taken in pairs (a[i] beside b[i]); lower is better (seconds). */
export function pairedSummary(a: readonly number[], b: readonly number[]): PairedSummary {
  if (a.length !== b.length) throw new RangeError(`paired samples differ in length (${a.length} and ${b.length})`);
  let bLess = 0;
  let bMore = 0;
  const changes: number[] = [];
  const differences: number[] = [];
  for (let i = 0; i < a.length; i++) {
    if (b[i] < a[i]) bLess++;
    else if (b[i] > a[i]) bMore++;
    changes.push(b[i] / a[i] - 1);
    differences.push(b[i] - a[i]);
  }
  return {
    pairs: a.length,
    medianA: median(a),
    medianB: median(b),
    medianChange: median(changes),
    medianDifference: median(differences),
    bLess,
    bMore,
    p: signTestP(bLess, bLess + bMore),
  };
}

/**
 * The least-squares slope of `ys` over `xs` (ordinary least squares, y = a + b x: returns b); NaN
 * for fewer than two points or when every x is the same. bench/soak.ts: RSS growth per hour.
 */
export function leastSquaresSlope(xs: readonly number[], ys: readonly number[]): number {
  if (xs.length !== ys.length) throw new RangeError(`slope needs as many x as y (${xs.length} and ${ys.length})`);
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx === 0 ? NaN : sxy / sxx;
}
