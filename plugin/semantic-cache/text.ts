// Text analysis shared by the offline embedder and the false-hit guards: normalisation, tokens, a small stemmer,
// stop words, synonym folding, and the signals the guards compare (negations, numbers, entities, content words).

/** Words that carry little meaning on their own: weighted down in vectors, ignored by the overlap guard. */
export const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    'a an the and or but if then else of to in on at by for with from into onto about as is are was were be been ' +
    'being am do does did doing have has had having i me my we our you your he she it its they them their this that ' +
    'these those there here what which who whom whose when where why how can could shall should will would may might ' +
    'must so such than too very just also any some all each every both either neither other another same own only ' +
    'more most much many few up down out over under again further once s t d ll m re ve y let lets get got ' +
    'please tell explain give show know want need like use using used way thing things one ones something'
  ).split(' '),
);

/** Words that flip the meaning of the clause they are in. */
export const NEGATIONS: ReadonlySet<string> = new Set([
  'not',
  'no',
  'never',
  'none',
  'nobody',
  'nothing',
  'nowhere',
  'neither',
  'nor',
  'without',
  'cannot',
  'cant',
  'dont',
  'doesnt',
  'didnt',
  'isnt',
  'arent',
  'wasnt',
  'werent',
  'wont',
  'wouldnt',
  'shouldnt',
  'couldnt',
  'hasnt',
  'havent',
  'hadnt',
  'mustnt',
  'neednt',
  'aint',
]);

/**
 * Opposite actions or qualities. Two requests that differ by one of these ask for opposite things even when every
 * other word matches ("enable 2FA" / "disable 2FA"). Compared after stemming.
 */
export const ANTONYMS: ReadonlyArray<readonly [string, string]> = [
  ['enable', 'disable'],
  ['enabl', 'disabl'],
  ['allow', 'deny'],
  ['allow', 'block'],
  ['add', 'remov'],
  ['add', 'delet'],
  ['creat', 'delet'],
  ['increas', 'decreas'],
  ['start', 'stop'],
  ['open', 'close'],
  ['open', 'clos'],
  ['befor', 'after'],
  ['buy', 'sell'],
  ['import', 'export'],
  ['encrypt', 'decrypt'],
  ['upload', 'download'],
  ['min', 'max'],
  ['minimum', 'maximum'],
  ['lock', 'unlock'],
  ['instal', 'uninstal'],
  ['includ', 'exclud'],
  ['accept', 'reject'],
  ['connect', 'disconnect'],
  ['show', 'hide'],
  ['true', 'fals'],
  ['best', 'worst'],
  ['advantag', 'disadvantag'],
  ['pro', 'con'],
  ['more', 'less'],
  ['higher', 'lower'],
  ['larger', 'smaller'],
  ['bigger', 'smaller'],
  ['faster', 'slower'],
  ['cheap', 'expens'],
  ['cheapest', 'expens'],
  ['win', 'lose'],
  ['gain', 'lose'],
  ['login', 'logout'],
  ['sign in', 'sign out'],
  ['subscrib', 'unsubscrib'],
  ['follow', 'unfollow'],
  ['male', 'femal'],
  ['man', 'woman'],
  ['men', 'women'],
  ['boy', 'girl'],
  ['husband', 'wife'],
  ['good', 'bad'],
  ['posit', 'negat'],
  ['success', 'failur'],
  ['love', 'hate'],
  ['legal', 'illeg'],
  ['safe', 'unsaf'],
  ['public', 'privat'],
  ['up', 'down'],
  ['in', 'out'],
  ['inbound', 'outbound'],
  ['ascend', 'descend'],
  ['north', 'south'],
  ['east', 'west'],
  ['past', 'futur'],
  ['first', 'last'],
];

/**
 * Synonym folding: each word on the left is replaced by the canonical word on the right before stemming, so common
 * paraphrases land on the same feature. Kept small and general; anything domain-specific belongs in a user option.
 */
export const SYNONYMS: Readonly<Record<string, string>> = {
  utilize: 'use',
  utilise: 'use',
  employ: 'use',
  leverage: 'use',
  create: 'make',
  build: 'make',
  construct: 'make',
  generate: 'make',
  produce: 'make',
  provide: 'give',
  offer: 'give',
  supply: 'give',
  enables: 'allow',
  enable: 'enable',
  permit: 'allow',
  lets: 'allow',
  obtain: 'get',
  acquire: 'get',
  retrieve: 'get',
  fetch: 'get',
  receive: 'get',
  modify: 'change',
  alter: 'change',
  edit: 'change',
  adjust: 'change',
  update: 'change',
  begin: 'start',
  commence: 'start',
  initiate: 'start',
  launch: 'start',
  finish: 'end',
  complete: 'end',
  terminate: 'end',
  conclude: 'end',
  halt: 'stop',
  cease: 'stop',
  large: 'big',
  huge: 'big',
  enormous: 'big',
  small: 'little',
  tiny: 'little',
  quick: 'fast',
  rapid: 'fast',
  speedy: 'fast',
  simple: 'easy',
  straightforward: 'easy',
  difficult: 'hard',
  challenging: 'hard',
  purchase: 'buy',
  demonstrate: 'show',
  display: 'show',
  illustrate: 'show',
  present: 'show',
  assist: 'help',
  aid: 'help',
  support: 'help',
  require: 'need',
  requires: 'need',
  necessary: 'need',
  mandatory: 'required',
  compulsory: 'required',
  optional: 'optional',
  method: 'way',
  approach: 'way',
  technique: 'way',
  means: 'way',
  fix: 'solve',
  resolve: 'solve',
  repair: 'solve',
  error: 'problem',
  issue: 'problem',
  bug: 'problem',
  fault: 'problem',
  mistake: 'problem',
  gain: 'get',
  earn: 'get',
  attain: 'get',
  achieve: 'get',
  locate: 'find',
  discover: 'find',
  identify: 'find',
  determine: 'find',
  correct: 'right',
  accurate: 'right',
  precise: 'right',
  incorrect: 'wrong',
  inaccurate: 'wrong',
  significant: 'important',
  crucial: 'important',
  essential: 'important',
  vital: 'important',
  key: 'important',
  primary: 'main',
  principal: 'main',
  chief: 'main',
  major: 'main',
  numerous: 'many',
  various: 'many',
  multiple: 'many',
  several: 'many',
  additional: 'extra',
  further: 'extra',
  contain: 'include',
  comprise: 'include',
  encompass: 'include',
  holds: 'include',
  hold: 'include',
  store: 'save',
  keep: 'save',
  preserve: 'save',
  persist: 'save',
  eliminate: 'remove',
  erase: 'delete',
  discard: 'remove',
  strip: 'remove',
  combine: 'merge',
  join: 'merge',
  concatenate: 'merge',
  integrate: 'merge',
  describe: 'explain',
  define: 'explain',
  meaning: 'definition',
  mean: 'definition',
  purpose: 'goal',
  aim: 'goal',
  objective: 'goal',
  function: 'function',
  functionality: 'feature',
  capability: 'feature',
  ability: 'feature',
  capacity: 'feature',
  individual: 'person',
  people: 'person',
  persons: 'person',
  folks: 'person',
  automobile: 'car',
  vehicle: 'car',
  film: 'movie',
  movies: 'movie',
  films: 'movie',
  phone: 'phone',
  smartphone: 'phone',
  cellphone: 'phone',
  mobile: 'phone',
  job: 'work',
  career: 'work',
  employment: 'work',
  occupation: 'work',
  learn: 'study',
  studying: 'study',
  studies: 'study',
  money: 'money',
  cash: 'money',
  funds: 'money',
  finances: 'money',
  fast: 'fast',
  cutting: 'advanced',
  modern: 'advanced',
  sophisticated: 'advanced',
  application: 'app',
  applications: 'app',
  program: 'app',
  software: 'app',
  tool: 'app',
  parameter: 'argument',
  param: 'argument',
  arg: 'argument',
  option: 'argument',
  information: 'detail',
  info: 'detail',
  data: 'data',
  attribute: 'feature',
  property: 'feature',
  characteristic: 'feature',
  folder: 'directory',
  dir: 'directory',
  repository: 'repo',
  document: 'doc',
  documentation: 'doc',
  docs: 'doc',
  instructions: 'guide',
  directions: 'guide',
  tutorial: 'guide',
  manual: 'guide',
  javascript: 'js',
  typescript: 'ts',
  python: 'python',
  default: 'default',
};

/** Looks a word up in the synonym table (own keys only: 'constructor' is a word too). */
export function synonym(word: string): string {
  return Object.hasOwn(SYNONYMS, word) ? (SYNONYMS[word] as string) : word;
}

const NUMBER_WORDS: Readonly<Record<string, number>> = {
  zero: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  seventy: 70,
  eighty: 80,
  ninety: 90,
  hundred: 100,
  thousand: 1000,
  million: 1_000_000,
  billion: 1_000_000_000,
  first: 1,
  second: 2,
  third: 3,
  fourth: 4,
  fifth: 5,
  tenth: 10,
  dozen: 12,
  half: 0.5,
  double: 2,
  twice: 2,
  triple: 3,
};

const MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];
const MONTH_ABBREV: Record<string, string> = {};
for (const m of MONTHS) MONTH_ABBREV[m.slice(0, 3)] = m;
const WEEKDAYS = new Set(['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday']);

/** Units whose change makes a different question ("5 km" / "5 miles"); normalised to one spelling. */
const UNITS: Readonly<Record<string, string>> = {
  km: 'km',
  kilometer: 'km',
  kilometers: 'km',
  kilometre: 'km',
  kilometres: 'km',
  mi: 'mile',
  mile: 'mile',
  miles: 'mile',
  m: 'm',
  meter: 'm',
  meters: 'm',
  metre: 'm',
  metres: 'm',
  cm: 'cm',
  mm: 'mm',
  ft: 'ft',
  foot: 'ft',
  feet: 'ft',
  inch: 'in',
  inches: 'in',
  kg: 'kg',
  kilogram: 'kg',
  kilograms: 'kg',
  g: 'g',
  gram: 'g',
  grams: 'g',
  lb: 'lb',
  lbs: 'lb',
  pound: 'lb',
  pounds: 'lb',
  oz: 'oz',
  l: 'l',
  liter: 'l',
  liters: 'l',
  litre: 'l',
  ml: 'ml',
  gb: 'gb',
  mb: 'mb',
  kb: 'kb',
  tb: 'tb',
  ms: 'ms',
  s: 's',
  sec: 's',
  second: 's',
  seconds: 's',
  min: 'min',
  minute: 'min',
  minutes: 'min',
  h: 'h',
  hr: 'h',
  hour: 'h',
  hours: 'h',
  day: 'day',
  days: 'day',
  week: 'week',
  weeks: 'week',
  month: 'month',
  months: 'month',
  year: 'year',
  years: 'year',
  usd: 'usd',
  dollar: 'usd',
  dollars: 'usd',
  eur: 'eur',
  euro: 'eur',
  euros: 'eur',
  inr: 'inr',
  rupee: 'inr',
  rupees: 'inr',
  percent: '%',
  '%': '%',
  c: 'c',
  f: 'f',
  celsius: 'c',
  fahrenheit: 'f',
};

/** Lower case, Unicode-normalised, apostrophes joined ("don't" → "dont"), other punctuation turned into spaces. */
export function normalise(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\u2018\u2019`']/g, '')
    .replace(/[^\p{L}\p{N}%$€£.\s-]+/gu, ' ')
    .replace(/(?<!\d)[.](?!\d)|-(?!\d)/g, ' ');
}

const TOKEN = /[\p{L}\p{N}%$€£]+(?:\.\d+)?/gu;

/** Tokens of the normalised text, in order. */
export function tokenize(text: string): string[] {
  return normalise(text).match(TOKEN) ?? [];
}

/**
 * A small suffix-stripping stemmer (a reduced Porter step 1 and 2): enough to fold plurals, tenses and the common
 * derivations of English question text, and fast. Words under 4 letters are kept as they are.
 */
export function stem(word: string): string {
  if (word.length < 4 || /\d/.test(word)) return word;
  let w = word;
  if (w.endsWith('sses')) w = w.slice(0, -2);
  else if (w.endsWith('ies') && w.length > 4) w = `${w.slice(0, -3)}y`;
  else if (w.endsWith('s') && !w.endsWith('ss') && !w.endsWith('us') && !w.endsWith('is')) w = w.slice(0, -1);
  if (w.endsWith('eed')) {
    if (w.length > 5) w = w.slice(0, -1);
  } else if (w.endsWith('ing') && w.length > 5 && /[aeiouy]/.test(w.slice(0, -3))) {
    w = undouble(w.slice(0, -3));
  } else if (w.endsWith('ed') && w.length > 4 && /[aeiouy]/.test(w.slice(0, -2))) {
    w = undouble(w.slice(0, -2));
  }
  for (const [suffix, replacement] of SUFFIXES) {
    if (w.endsWith(suffix) && w.length - suffix.length >= 3) {
      w = w.slice(0, -suffix.length) + replacement;
      break;
    }
  }
  if (w.endsWith('e') && w.length > 4) w = w.slice(0, -1);
  if (w.endsWith('y') && w.length > 4) w = `${w.slice(0, -1)}i`;
  return w;
}

const SUFFIXES: ReadonlyArray<readonly [string, string]> = [
  ['ational', 'ate'],
  ['ization', 'ize'],
  ['isation', 'ize'],
  ['fulness', 'ful'],
  ['iveness', 'ive'],
  ['ousness', 'ous'],
  ['ation', 'ate'],
  ['ement', ''],
  ['ment', ''],
  ['ness', ''],
  ['ally', 'al'],
  ['ably', 'able'],
  ['ibly', 'ible'],
  ['ently', 'ent'],
  ['ously', 'ous'],
  ['ively', 'ive'],
  ['fully', 'ful'],
  ['ity', ''],
  ['ly', ''],
  ['ise', 'ize'],
];

function undouble(w: string): string {
  const last = w.at(-1);
  if (last && w.length > 3 && last === w.at(-2) && !'lsz'.includes(last)) return w.slice(0, -1);
  return w;
}

export interface Term {
  /** The token as written (lower case). */
  raw: string;
  /** After synonym folding and stemming. */
  stem: string;
  stop: boolean;
}

/** Tokens folded through the synonym table and stemmed, with their stop-word flag. */
export function terms(text: string): Term[] {
  const out: Term[] = [];
  for (const raw of tokenize(text)) {
    const folded = synonym(raw);
    out.push({ raw, stem: stem(folded), stop: STOP_WORDS.has(raw) || STOP_WORDS.has(folded) });
  }
  return out;
}

/** What the guards compare, computed once per text (and kept with each cached entry). */
export interface Signals {
  /** Count of negation words (odd = negated). */
  negations: number;
  /** Stems present that belong to an antonym pair. */
  polar: string[];
  /** Numbers, dates and units, normalised ("5 km" → "5 km", "March" → "month:3"). */
  numbers: string[];
  /** Capitalised or code-like names, lower-cased. */
  entities: string[];
  /** Stems of content words (no stop words, no negations). */
  content: string[];
  /** The kinds of answer asked for that a paraphrase keeps: reason, time, place, person (sorted, joined). */
  intent: string;
}

const INTENT_WORDS: Readonly<Record<string, string>> = {
  why: 'reason',
  when: 'time',
  where: 'place',
  who: 'person',
  whom: 'person',
};

const POLAR_STEMS = new Set(ANTONYMS.flat());

function parseNumber(token: string): number | undefined {
  if (/^\d+(?:\.\d+)?$/.test(token)) return Number(token);
  const m = /^(\d+(?:\.\d+)?)(k|m|bn|b)$/.exec(token);
  if (m) return Number(m[1]) * ({ k: 1e3, m: 1e6, bn: 1e9, b: 1e9 } as Record<string, number>)[m[2] as string]!;
  return Object.hasOwn(NUMBER_WORDS, token) ? NUMBER_WORDS[token] : undefined;
}

/** Extracts the guard signals of a text. Bounded: only the first 4,000 characters are read. */
export function signals(text: string): Signals {
  const head = text.length > 4000 ? text.slice(0, 4000) : text;
  const tokens = tokenize(head);
  let negations = 0;
  const polar = new Set<string>();
  const numbers = new Set<string>();
  const content = new Set<string>();
  const intent = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as string;
    if (Object.hasOwn(INTENT_WORDS, t)) intent.add(INTENT_WORDS[t] as string);
    if (NEGATIONS.has(t) || (t.endsWith('nt') && NEGATIONS.has(t))) negations++;
    const s = stem(synonym(t));
    if (POLAR_STEMS.has(s)) polar.add(s);
    else if (POLAR_STEMS.has(t)) polar.add(t);
    const n = parseNumber(t);
    if (n !== undefined && !(t === 'one' || t === 'second' || t === 'first')) {
      // Multipliers written as words after a number ("50 thousand") fold into the number itself.
      const next = tokens[i + 1];
      const mult = next === 'thousand' ? 1e3 : next === 'million' ? 1e6 : next === 'billion' ? 1e9 : 1;
      const unit = next !== undefined && Object.hasOwn(UNITS, next) ? UNITS[next] : undefined;
      numbers.add(`${n * mult}${unit ? ` ${unit}` : ''}`);
      if (mult !== 1) i++;
      continue;
    }
    const month = Object.hasOwn(MONTH_ABBREV, t.slice(0, 3)) ? MONTH_ABBREV[t.slice(0, 3)] : undefined;
    if (month && (t === month || t === month.slice(0, 3)) && t !== 'may' && t !== 'mar') {
      numbers.add(`month:${MONTHS.indexOf(month) + 1}`);
    } else if (WEEKDAYS.has(t)) {
      numbers.add(`day:${t}`);
    }
    if (!STOP_WORDS.has(t) && !NEGATIONS.has(t) && t.length > 1) content.add(s);
  }
  return {
    negations,
    polar: [...polar],
    numbers: [...numbers],
    entities: entities(head),
    content: [...content],
    intent: [...intent].sort().join(','),
  };
}

const ENTITY_STOP = new Set(['i', 'what', 'how', 'why', 'who', 'when', 'where', 'which', 'is', 'are', 'can', 'do']);

/**
 * Names in the text: capitalised words that do not start a sentence, all-caps acronyms, and code-like tokens
 * (camelCase, snake_case, dotted names). Multi-word names are joined ("New York" → "new york").
 */
export function entities(text: string): string[] {
  const out = new Set<string>();
  const words = text.split(/\s+/);
  let sentenceStart = true;
  let run: string[] = [];
  const flush = (): void => {
    if (run.length) out.add(run.join(' '));
    run = [];
  };
  for (const word of words) {
    const clean = word.replace(/^[^\p{L}\p{N}_]+|[^\p{L}\p{N}_]+$/gu, '');
    if (!clean) {
      flush();
      continue;
    }
    const codeLike = /[a-z][A-Z]|_|\w\.\w|^[A-Z]{2,}\d*$|\d[a-zA-Z]|[a-zA-Z]\d/.test(clean);
    const capitalised = /^\p{Lu}/u.test(clean) && !sentenceStart && !ENTITY_STOP.has(clean.toLowerCase());
    if (codeLike || capitalised) run.push(clean.toLowerCase());
    else flush();
    sentenceStart = /[.!?:]$/.test(word);
  }
  flush();
  return [...out];
}
