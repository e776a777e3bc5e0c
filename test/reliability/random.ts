// A seeded pseudo-random generator for the reliability suites, so a failing run can be replayed
// exactly from the seed it prints (PODVISOR_RELIABILITY_SEED).
import { randomInt } from 'node:crypto';

/** A fresh 31-bit seed, for runs that were given none. */
export function randomSeed(): number {
  return randomInt(1, 2 ** 31);
}

/** mulberry32: numbers in [0, 1), the same sequence for the same seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}
