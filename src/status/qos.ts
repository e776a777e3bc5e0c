// The pod's QoS class by the kubelet's rules (pkg/apis/core/v1/helper/qos: GetPodQOS): cpu and
// memory requests and limits summed over the app and init containers. Sums are exact rationals,
// as resource.Quantity's are: in floating point 100m + 200m is not 300m, and a Guaranteed pod
// would read as Burstable.
// Pod-level resources (spec.resources) are not considered: podvisor ignores them (field-policy.ts).
import type { Container, PodSpec } from '../manifest/pod-schema.js';
import type { PodQOSClass } from './types.js';
import { allContainers } from '../manifest/pod-containers.js';

/** The only resources that decide the class. */
const QOS_RESOURCES = ['cpu', 'memory'] as const;
type QosResource = (typeof QOS_RESOURCES)[number];

/** An exact fraction; the denominator is positive. */
interface Rational {
  num: bigint;
  den: bigint;
}

const ZERO: Rational = { num: 0n, den: 1n };

// The API machinery's quantity grammar (as in manifest/quantity.ts), kept here to read it exactly.
const QUANTITY = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;
const DECIMAL_EXPONENT: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_EXPONENT: Record<string, bigint> = { Ki: 10n, Mi: 20n, Gi: 30n, Ti: 40n, Pi: 50n, Ei: 60n };

/** Reads a quantity exactly, or returns undefined when it is not one. */
function exactQuantity(input: string | number): Rational | undefined {
  const text = typeof input === 'number' ? String(input) : input;
  const match = QUANTITY.exec(text);
  if (!match) return undefined;
  const [, sign = '', whole = '', fraction = '', exponent, suffix] = match;
  if (whole === '' && fraction === '') return undefined;
  let num = BigInt(whole + fraction) * (sign === '-' ? -1n : 1n);
  let den = 10n ** BigInt(fraction.length);
  const power = exponent !== undefined ? Number(exponent) : suffix !== undefined ? DECIMAL_EXPONENT[suffix] ?? 0 : 0;
  if (power >= 0) num *= 10n ** BigInt(power);
  else den *= 10n ** BigInt(-power);
  const binary = suffix !== undefined ? BINARY_EXPONENT[suffix] : undefined;
  if (binary !== undefined) num *= 2n ** binary;
  return { num, den };
}

function add(a: Rational, b: Rational): Rational {
  return { num: a.num * b.den + b.num * a.den, den: a.den * b.den };
}

function compare(a: Rational, b: Rational): number {
  const left = a.num * b.den;
  const right = b.num * a.den;
  return left === right ? 0 : left > right ? 1 : -1;
}

/** The container's positive cpu and memory quantities from one list (requests or limits). */
function positive(list: Record<string, string | number> | undefined): Map<QosResource, Rational> {
  const out = new Map<QosResource, Rational>();
  for (const name of QOS_RESOURCES) {
    const raw = list?.[name];
    const value = raw === undefined ? undefined : exactQuantity(raw);
    if (value && compare(value, ZERO) > 0) out.set(name, value);
  }
  return out;
}

/** Requests as the API server defaults them: a limit without a request is also the request. */
function defaultedRequests(container: Container): Record<string, string | number> | undefined {
  const { limits, requests } = container.resources ?? {};
  return limits ? { ...limits, ...requests } : requests;
}

function addInto(total: Map<QosResource, Rational>, values: Map<QosResource, Rational>): void {
  for (const [name, value] of values) total.set(name, add(total.get(name) ?? ZERO, value));
}

/**
 * The pod's QoS class, by GetPodQOS: BestEffort with no cpu or memory request or limit anywhere;
 * Guaranteed when every container limits both cpu and memory and, summed over the pod, the
 * requests equal the limits; Burstable otherwise.
 */
export function qosClass(spec: Pick<PodSpec, 'containers' | 'initContainers'>): PodQOSClass {
  const requests = new Map<QosResource, Rational>();
  const limits = new Map<QosResource, Rational>();
  let guaranteed = true;
  for (const container of allContainers(spec)) {
    addInto(requests, positive(defaultedRequests(container)));
    const containerLimits = positive(container.resources?.limits);
    addInto(limits, containerLimits);
    if (!QOS_RESOURCES.every((name) => containerLimits.has(name))) guaranteed = false;
  }
  if (requests.size === 0 && limits.size === 0) return 'BestEffort';
  if (!guaranteed || requests.size !== limits.size) return 'Burstable';
  for (const [name, request] of requests) {
    const limit = limits.get(name);
    if (!limit || compare(limit, request) !== 0) return 'Burstable';
  }
  return 'Guaranteed';
}
