// Kubernetes resource quantities ("500m", "1.5", "128Mi", "1e3"), parsed to plain numbers:
// cores for cpu, bytes for memory. The grammar is the API machinery's (resource.Quantity).

// `\d+(?:\.\d*)?`, not `\d+\.?\d*`: the latter backtracks over every split of a long digit run
// (80,000 digits and a stray letter took 9 s).
const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;

const SUFFIX: Record<string, number> = {
  n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** The API machinery caps a quantity at the largest int64 rather than refuse it ("1e400" is accepted). */
export const MAX_QUANTITY = 2 ** 63 - 1;

/** Parses a quantity to its value (capped at ±MAX_QUANTITY, as Kubernetes does), or returns undefined when it is not one. */
export function parseQuantity(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) ? cap(input) : undefined;
  const match = QUANTITY.exec(input.trim());
  if (!match || input.trim() !== input) return undefined;
  const base = Number(match[1]);
  if (!Number.isFinite(base)) return cap(base);
  if (match[2] !== undefined) return cap(base * 10 ** Number(match[2].slice(1)));
  if (match[3] !== undefined) return cap(base * (SUFFIX[match[3]] ?? 1));
  return cap(base);
}

/** Clamps to the int64 range; 0 × 10^400 (NaN) is 0. */
function cap(value: number): number {
  if (Number.isNaN(value)) return 0;
  return Math.max(-MAX_QUANTITY, Math.min(MAX_QUANTITY, value));
}

/** Rounds a cpu quantity up to whole millicores, as the kubelet does before using it. */
export function milliCpu(input: string | number): number | undefined {
  const cores = parseQuantity(input);
  return cores === undefined ? undefined : Math.ceil(Math.round(cores * 1e9) / 1e6);
}
