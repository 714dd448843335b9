/** Benchmark sizes. `large` is the issue's: 1,000,000 articles and 20,000,000 events over 90 days. */
export const SCALES = ['small', 'medium', 'large'] as const;
export type Scale = (typeof SCALES)[number];

export interface ScaleSize {
  articles: number;
  users: number;
  categories: number;
  tags: number;
  /** ClickHouse user events, spread over `days`. */
  events: number;
  days: number;
}

export const SIZES: Readonly<Record<Scale, ScaleSize>> = {
  small: { articles: 5_000, users: 500, categories: 40, tags: 200, events: 200_000, days: 90 },
  medium: { articles: 100_000, users: 10_000, categories: 200, tags: 1_000, events: 2_000_000, days: 90 },
  large: { articles: 1_000_000, users: 100_000, categories: 2_000, tags: 5_000, events: 20_000_000, days: 90 },
};

/** The fixed seed every generated row derives from: the same scale gives the same data. */
export const SEED = 20_261_126;

/** A small, fast, seeded PRNG (mulberry32): deterministic data without a dependency. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
