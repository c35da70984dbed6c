// The demo's two accounts and a password check that costs the same whether the user exists or not: scrypt over a
// per-run salt, compared with timingSafeEqual.

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface DemoUser {
  id: string;
  name: string;
  /** The tenant the user belongs to: usage is counted per workspace. */
  workspace: string;
}

const derive = (password: string, salt: Buffer) =>
  new Promise<Buffer>((resolve, reject) =>
    scrypt(password, salt, 32, (error, key) => (error ? reject(error) : resolve(key))),
  );

/** The demo accounts, named on the landing page. Their hashes are made once per process, never logged. */
export const DEMO_ACCOUNTS: ReadonlyArray<DemoUser & { password: string }> = [
  { id: 'alice', name: 'Alice', workspace: 'acme', password: 'alice-password' },
  { id: 'bob', name: 'Bob', workspace: 'globex', password: 'bob-password' },
];

export interface Accounts {
  /** The user for a correct username and password, otherwise undefined. Never throws on odd input. */
  verify(username: string, password: string): Promise<DemoUser | undefined>;
  get(id: string): DemoUser | undefined;
}

export function createAccounts(): Accounts {
  const salt = randomBytes(16);
  const users = new Map<string, { user: DemoUser; hash: Promise<Buffer> }>();
  for (const { password, ...user } of DEMO_ACCOUNTS) users.set(user.id, { user, hash: derive(password, salt) });
  // An unknown user is checked against this hash, so the answer takes as long as for a known one.
  const decoy = derive(randomBytes(16).toString('hex'), salt);
  return {
    async verify(username, password) {
      const entry = users.get(username);
      const expected = await (entry?.hash ?? decoy);
      const given = await derive(password, salt);
      return timingSafeEqual(expected, given) && entry ? entry.user : undefined;
    },
    get: (id) => users.get(id)?.user,
  };
}
