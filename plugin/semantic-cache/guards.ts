// False-hit guards, run after the vector match on the query and the candidate's stored signals. Each one is
// switchable and each rejection is counted, so its effect can be measured (npm run eval:semantic).

import { OfflineEmbedder } from './embedders/offline.js';
import { ANTONYMS, NEGATIONS, STOP_WORDS, type Signals, stem, synonym, tokenize } from './text.js';

export type GuardName =
  | 'negation'
  | 'numbers'
  | 'entities'
  | 'intent'
  | 'refinement'
  | 'substitution'
  | 'wording'
  | 'overlap';
export const GUARD_NAMES: readonly GuardName[] = [
  'negation',
  'numbers',
  'entities',
  'intent',
  'refinement',
  'substitution',
  'wording',
  'overlap',
];

export interface GuardConfig {
  negation: boolean;
  numbers: boolean;
  entities: boolean;
  intent: boolean;
  refinement: boolean;
  substitution: boolean;
  /** Short questions must match in wording, function words included (see wordingMismatch). */
  wording: boolean;
  /** Minimum share of content words in common (overlap coefficient), or 0 for off. */
  minOverlap: number;
}

function setOf(values: readonly string[]): Set<string> {
  return new Set(values);
}

/** Polarity differs: odd vs even negation count, or one side holds a word whose antonym only the other holds. */
export function negationMismatch(a: Signals, b: Signals): boolean {
  if (a.negations % 2 !== b.negations % 2) return true;
  const pa = setOf(a.polar);
  const pb = setOf(b.polar);
  for (const [x, y] of ANTONYMS) {
    if ((pa.has(x) && !pa.has(y) && pb.has(y) && !pb.has(x)) || (pa.has(y) && !pa.has(x) && pb.has(x) && !pb.has(y)))
      return true;
  }
  return false;
}

/** Different numbers, dates or units: any value on one side that the other lacks. */
export function numbersMismatch(a: Signals, b: Signals): boolean {
  if (a.numbers.length === 0 && b.numbers.length === 0) return false;
  const sa = setOf(a.numbers);
  const sb = setOf(b.numbers);
  if (sa.size !== sb.size) return true;
  for (const n of sa) if (!sb.has(n)) return true;
  return false;
}

function squash(name: string): string {
  return name.replace(/[^\p{L}\p{N}]+/gu, '');
}

/**
 * A name was swapped: each side names something the other does not mention at all (not even inside a longer
 * name or as plain lower-case text). One side adding context ("in Python") is not a swap.
 */
export function entitiesMismatch(a: Signals, b: Signals, aText: string, bText: string): boolean {
  if (a.entities.length === 0 || b.entities.length === 0) return false;
  const flatA = squash(aText.toLowerCase());
  const flatB = squash(bText.toLowerCase());
  const missingInB = a.entities.some((e) => !flatB.includes(squash(e)));
  if (!missingInB) return false;
  return b.entities.some((e) => !flatA.includes(squash(e)));
}

/** The questions ask for a different kind of answer: a reason, a time, a place or a person on one side only. */
export function intentMismatch(a: Signals, b: Signals): boolean {
  return a.intent !== b.intent;
}

/**
 * One side is the other plus something: every content word of the shorter is in the longer, and the longer adds
 * content words of its own ("leave travel concession" / "leave travel concession scam"). A narrower or wider
 * question wants a different answer; a paraphrase swaps words on both sides instead.
 */
export function isRefinement(a: Signals, b: Signals): boolean {
  if (a.content.length === b.content.length) return false;
  const [small, large] = a.content.length < b.content.length ? [a, b] : [b, a];
  // Long texts drop and add clauses when paraphrased; a single added word reframes only a short question.
  if (small.content.length === 0 || small.content.length > REFINEMENT_MAX_WORDS) return false;
  const sl = setOf(large.content);
  for (const w of small.content) if (!sl.has(w)) return false;
  return true;
}

/** Longest differing middle segment (tokens) the substitution guard looks for. */
export const SUBSTITUTION_MAX_TOKENS = 3;

function folded(text: string): string[] {
  return tokenize(text.length > 2000 ? text.slice(0, 2000) : text).map((t) => stem(synonym(t)));
}

/**
 * The same sentence with one slot swapped: identical before and after, and in between at most 3 tokens on each
 * side, each side holding a content word ("a fight between a tiger and a hippo" / "... and a lion"). A paraphrase
 * rewrites more than one short span; a template with another noun in it asks about something else.
 */
export function isSubstitution(aText: string, bText: string): boolean {
  const a = folded(aText);
  const b = folded(bText);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  let j = 0;
  while (j < a.length - i && j < b.length - i && a[a.length - 1 - j] === b[b.length - 1 - j]) j++;
  const ma = a.slice(i, a.length - j);
  const mb = b.slice(i, b.length - j);
  if (
    ma.length === 0 ||
    mb.length === 0 ||
    ma.length > SUBSTITUTION_MAX_TOKENS ||
    mb.length > SUBSTITUTION_MAX_TOKENS
  ) {
    return false;
  }
  const content = (xs: string[]): boolean => xs.some((x) => x.length > 2 && !STOP_WORDS.has(x) && !NEGATIONS.has(x));
  return content(ma) && content(mb);
}

/** Longest (in content words) shorter side for which the refinement guard applies. */
export const REFINEMENT_MAX_WORDS = 4;

/**
 * Wording features: every word including the function words ('how', 'most', 'our', 'should'), bigrams and character
 * trigrams. The offline embedder leaves function words out of its vectors (they would put every entry in one posting
 * list), which makes "How common is mental illness?" and "What is the most common mental illness?" identical to it.
 */
const WORDING = new OfflineEmbedder({ stopWeight: 0.5, charWeight: 0.5 });

/** At or under this many content words (the shorter side), a match needs WORDING_SHORT_MIN wording similarity. */
export const WORDING_SHORT_WORDS = 4;
/** From this many content words on, the wording guard no longer applies. */
export const WORDING_LONG_WORDS = 10;
/** Wording similarity a short question needs: near-identical wording. */
export const WORDING_SHORT_MIN = 0.98;
/** Wording similarity needed just under WORDING_LONG_WORDS (linear from WORDING_SHORT_MIN in between). */
export const WORDING_LONG_MIN = 0.65;

/**
 * Function words a rewording swaps freely: the auxiliaries of a question ("How do I" / "How can I") fold into one,
 * articles are dropped. Function words that change the question ('should', 'most', 'our', 'many') are kept.
 */
const WORDING_FOLD: Readonly<Record<string, string>> = {
  can: 'do',
  could: 'do',
  does: 'do',
  did: 'do',
  would: 'do',
  will: 'do',
  a: '',
  an: '',
  the: '',
};

function wordingText(text: string): string {
  const head = text.length > 2000 ? text.slice(0, 2000) : text;
  // Whole words only: the 'can' of "can't" stays, it is a negation.
  return head
    .toLowerCase()
    .replace(
      /(?<![\p{L}'\u2019])\p{L}+(?![\p{L}'\u2019])/gu,
      (w) => (Object.hasOwn(WORDING_FOLD, w) ? WORDING_FOLD[w] : w) as string,
    );
}

/** Cosine of the two texts' wording features (1 = same words, same function words). */
export function wordingSimilarity(aText: string, bText: string): number {
  const a = WORDING.features(wordingText(aText));
  const b = WORDING.features(wordingText(bText));
  const [small, large] = a.size < b.size ? [a, b] : [b, a];
  let dot = 0;
  for (const [i, x] of small) {
    const y = large.get(i);
    if (y !== undefined) dot += x * y;
  }
  return dot;
}

/** Wording similarity required for a pair whose shorter side has `words` content words (0 = no requirement). */
export function wordingRequired(words: number): number {
  if (words >= WORDING_LONG_WORDS) return 0;
  if (words <= WORDING_SHORT_WORDS) return WORDING_SHORT_MIN;
  const f = (words - WORDING_SHORT_WORDS) / (WORDING_LONG_WORDS - WORDING_SHORT_WORDS);
  return WORDING_SHORT_MIN + (WORDING_LONG_MIN - WORDING_SHORT_MIN) * f;
}

/**
 * A short question carries its meaning in every word: one changed function word ("how common" / "most common",
 * "our life" / "life") or a swapped noun is a different question, while a paraphrase of a long text rewrites many
 * words and keeps its meaning. So the fewer content words, the closer the wording must be: near-identical
 * (WORDING_SHORT_MIN) at 4 content words or fewer, relaxing linearly to WORDING_LONG_MIN at 9, nothing from 10 on.
 */
export function wordingMismatch(a: Signals, b: Signals, aText: string, bText: string): boolean {
  const required = wordingRequired(Math.min(a.content.length, b.content.length));
  return required > 0 && wordingSimilarity(aText, bText) < required;
}

/** Share of the smaller side's content words found on the other side (overlap coefficient). */
export function contentOverlap(a: Signals, b: Signals): number {
  if (a.content.length === 0 || b.content.length === 0) return a.content.length === b.content.length ? 1 : 0;
  const sb = setOf(b.content);
  let common = 0;
  for (const w of a.content) if (sb.has(w)) common++;
  return common / Math.min(a.content.length, b.content.length);
}

/** The first guard that rejects the pair, or undefined when the candidate may be served. */
export function checkGuards(
  config: GuardConfig,
  query: Signals,
  queryText: string,
  candidate: Signals,
  candidateText: string,
): GuardName | undefined {
  if (config.negation && negationMismatch(query, candidate)) return 'negation';
  if (config.numbers && numbersMismatch(query, candidate)) return 'numbers';
  if (config.entities && entitiesMismatch(query, candidate, queryText, candidateText)) return 'entities';
  if (config.intent && intentMismatch(query, candidate)) return 'intent';
  if (config.refinement && isRefinement(query, candidate)) return 'refinement';
  if (config.substitution && isSubstitution(queryText, candidateText)) return 'substitution';
  if (config.wording && wordingMismatch(query, candidate, queryText, candidateText)) return 'wording';
  if (config.minOverlap > 0 && contentOverlap(query, candidate) < config.minOverlap) return 'overlap';
  return undefined;
}
