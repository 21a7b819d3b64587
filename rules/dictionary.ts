/**
 * Dictionary model: the phrases Hark looks for. Produced by the CSV and pack readers in rules/,
 * consumed by the compiler (rules/compile.ts) which turns it into the matcher artifact that
 * sensor/match loads. The sensor never parses dictionary source itself.
 */

/** The safeguarding categories of the starter dictionary; packs may add their own (free text). */
export const STARTER_CATEGORIES = [
  'self-harm', 'bullying', 'violence', 'weapons', 'radicalisation', 'drugs', 'sexual', 'grooming',
] as const;

export interface Phrase {
  /** Exactly as the dictionary spells it; captures report this spelling. */
  readonly phrase: string;
  readonly category: string;
  /** 1 (lowest) to 5 (highest). */
  readonly severity: 1 | 2 | 3 | 4 | 5;
  /** true: may match inside a longer word; false (default): whole words only. */
  readonly embedded: boolean;
  /** Longer phrases that cancel this one where they cover the match ("killer whale" for "kill"). */
  readonly exclusions: readonly string[];
  /** BCP 47 language tags, informational; empty = any. */
  readonly languages: readonly string[];
}

export interface Dictionary {
  readonly name: string;
  readonly phrases: readonly Phrase[];
}
