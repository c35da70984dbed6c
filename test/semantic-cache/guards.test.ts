// Each false-hit guard on pairs it must reject and on paraphrases it must let through.

import {
  checkGuards,
  type GuardConfig,
  isSubstitution,
  WORDING_SHORT_MIN,
  wordingRequired,
  wordingSimilarity,
} from '../../plugin/semantic-cache/guards';
import { signals, stem } from '../../plugin/semantic-cache/text';

const ALL: GuardConfig = {
  negation: true,
  numbers: true,
  entities: true,
  intent: true,
  refinement: true,
  substitution: true,
  wording: true,
  minOverlap: 0.3,
};
const check = (a: string, b: string, config = ALL) => checkGuards(config, signals(a), a, signals(b), b);

test.each([
  ['How do I enable 2FA on my account?', 'How do I disable 2FA on my account?', 'negation'],
  ['Is the API free to use?', 'Is the API not free to use?', 'negation'],
  ["Why doesn't my build start?", 'Why does my build start?', 'negation'],
  ['Book a table for 4 people at 7 pm', 'Book a table for 6 people at 7 pm', 'numbers'],
  ['Convert 5 km to meters', 'Convert 5 miles to meters', 'numbers'],
  ['What happened in March 2020?', 'What happened in June 2020?', 'numbers'],
  ['How hard is the interview at Google?', 'How hard is the interview at Amazon?', 'entities'],
  ['Why was chocolate invented?', 'When was chocolate invented?', 'intent'],
  ['What is leave travel concession?', 'What is leave travel concession scam?', 'refinement'],
  [
    'Who would win a fight between a tiger and a hippo?',
    'Who would win a fight between a tiger and a lion?',
    'substitution',
  ],
])('%s / %s → rejected by %s', (a, b, guard) => {
  expect(check(a, b)).toBe(guard);
});

test.each([
  ['How do I reset my password?', 'How can I reset my password?'],
  ['Transformers is a state-of-the-art library for PyTorch.', 'Transformers is a modern library for PyTorch.'],
  ['The Inference API gives access to 50k models.', 'The Inference API provides access to 50 thousand models.'],
  ["It isn't available in v2.10.", 'It is not available in v2.10.'],
])('%s / %s → served', (a, b) => {
  // The wording guard is tested on its own below: it asks near-identical wording of short texts like these.
  expect(check(a, b, { ...ALL, wording: false })).toBeUndefined();
});

test.each([
  ['How common is mental illness?', 'What is the most common mental illness?'],
  ['What is the best part of life?', 'What is the best part of our life?'],
  ['What degree should I get?', 'What degree should I do?'],
])('wording: short questions that differ in a function word are different questions: %s / %s', (a, b) => {
  expect(check(a, b, { ...ALL, wording: false })).toBeUndefined();
  expect(check(a, b)).toBe('wording');
  expect(wordingSimilarity(a, b)).toBeLessThan(WORDING_SHORT_MIN);
});

test('wording: auxiliaries and articles may differ; longer questions may be reworded', () => {
  expect(check('How do I reset my password?', 'How can I reset my password?')).toBeUndefined();
  expect(wordingSimilarity('How do I reset my password?', 'How can I reset the password?')).toBeGreaterThan(0.9);
  // Six content words: the bar is lower (linear from 0.98 at four to 0.65 at nine, none from ten).
  expect(
    check(
      'How do I reset the password of my email account on a new phone?',
      'How can I reset my email account password on my new phone?',
    ),
  ).toBeUndefined();
  expect(wordingRequired(4)).toBe(WORDING_SHORT_MIN);
  expect(wordingRequired(7)).toBeLessThan(WORDING_SHORT_MIN);
  expect(wordingRequired(10)).toBe(0);
  // "can't" is a negation, not the auxiliary 'can': it is not folded away.
  expect(wordingSimilarity("What can't I do?", 'What do I do?')).toBeLessThan(0.9);
});

test('each guard can be switched off', () => {
  // A one-word swap is also a substitution and a change of wording: switch those off to let these through.
  const loose = { ...ALL, substitution: false, wording: false };
  expect(check('enable 2FA now', 'disable 2FA now', { ...loose, negation: false })).toBeUndefined();
  expect(check('Convert 5 km to meters', 'Convert 5 miles to meters', { ...loose, numbers: false })).toBeUndefined();
  expect(check('gardening tips for spring', 'quantum physics lecture notes', loose)).toBe('overlap');
  expect(
    check('gardening tips for spring', 'quantum physics lecture notes', { ...loose, minOverlap: 0 }),
  ).toBeUndefined();
  expect(check('How common is mental illness?', 'What is the most common mental illness?', ALL)).toBe('wording');
});

test('substitution needs one short swapped span, not a rewrite', () => {
  expect(isSubstitution('What is the capital of France?', 'What is the capital of Spain?')).toBe(true);
  expect(isSubstitution('What is the capital of France?', 'Which city is the capital of France?')).toBe(false);
  expect(isSubstitution('same text', 'same text')).toBe(false);
});

test('stemming folds common inflections', () => {
  expect(stem('connections')).toBe(stem('connection'));
  expect(stem('studies')).toBe(stem('study'));
  expect(stem('running')).toBe(stem('run'));
});
