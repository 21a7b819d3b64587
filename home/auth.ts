/**
 * Operator authentication: scrypt password hashes, random session tokens (only their SHA-256 is
 * stored), site-key digests and the login rate limiter (failures per user and per peer address in
 * a sliding window). Input: secrets as typed. Output: hashes, verdicts, and retry-after seconds.
 */

import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** scrypt cost: N=2^15, r=8 (OWASP's 2023 minimum for scrypt), about 50 ms and 32 MiB per check. */
const SCRYPT_N = 1 << 15;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SCRYPT_KEYLEN = 32;
const SCRYPT_MAXMEM = 64 * 1024 * 1024;
/** A password shorter than this is refused when set: long passphrases beat complexity rules (NIST SP 800-63B). */
export const MIN_PASSWORD_CHARS = 10;
/** Longer inputs are refused before hashing: scrypt cost must not be driven by the attacker. */
export const MAX_PASSWORD_CHARS = 1024;
/** Site keys: at least 8 characters, as NetSupport's gateway keys (seeds/003). */
export const MIN_SITE_KEY_CHARS = 8;
export const MAX_SITE_KEY_CHARS = 256;

/** Login failures allowed in the window before further attempts get 429. */
export const LOGIN_FAILURES_PER_USER = 5;
export const LOGIN_FAILURES_PER_PEER = 20;
export const LOGIN_WINDOW_MS = 15 * 60 * 1000;
/** Distinct users / peers tracked; past it the oldest entries are dropped (memory bound under a spray). */
export const MAX_RATE_KEYS = 10_000;

function scryptAsync(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, SCRYPT_KEYLEN, { N: n, r, p, maxmem: SCRYPT_MAXMEM }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** `scrypt$N$r$p$salt$hash` (base64). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P);
  return `scrypt$${SCRYPT_N}$${SCRYPT_R}$${SCRYPT_P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

const DUMMY_HASH = `scrypt$${SCRYPT_N}$${SCRYPT_R}$${SCRYPT_P}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(SCRYPT_KEYLEN).toString('base64')}`;

/** True when `password` matches `stored`; with `stored` undefined still spends the same time (no user probing). */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  if (typeof password !== 'string' || password.length > MAX_PASSWORD_CHARS) return false;
  const parts = (stored ?? DUMMY_HASH).split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const expected = Buffer.from(parts[5], 'base64');
  const key = await scryptAsync(password, Buffer.from(parts[4], 'base64'), n, r, p);
  return stored !== undefined && key.length === expected.length && timingSafeEqual(key, expected);
}

/** Why a new password is unacceptable, or undefined. */
export function passwordProblem(password: unknown): string | undefined {
  if (typeof password !== 'string') return 'the password must be a string';
  if ([...password].length < MIN_PASSWORD_CHARS) return `the password must have at least ${MIN_PASSWORD_CHARS} characters`;
  if (password.length > MAX_PASSWORD_CHARS) return `the password must have at most ${MAX_PASSWORD_CHARS} characters`;
  return undefined;
}

/** A readable random password (no look-alike characters), 20 characters ~ 115 bits. */
export function randomPassword(chars = 20): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(chars * 2);
  let out = '';
  for (let i = 0; out.length < chars && i < bytes.length; i++) {
    // 56 symbols: reject bytes >= 224 (4 * 56) so every symbol is equally likely.
    if (bytes[i] < 224) out += alphabet[bytes[i] % 56];
  }
  return out.length === chars ? out : randomPassword(chars);
}

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Digest of a site key with its salt (keys are compared by digest; the key itself is not kept). */
export function siteKeyDigest(key: string, salt: string): string {
  return createHash('sha256').update(salt).update('\0').update(key.normalize('NFC')).digest('hex');
}

export function siteKeyMatches(key: string, salt: string, digest: string): boolean {
  const a = Buffer.from(siteKeyDigest(key, salt), 'hex');
  const b = Buffer.from(digest, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** One counted attempt; `pending` while its password check runs. */
export interface Mark {
  readonly at: number;
  pending: boolean;
}

/**
 * Failures per key in a sliding window. `retryAfter(key)` is 0 when allowed, else the seconds
 * until the oldest failure in the window ages out. An attempt whose outcome is not known yet is
 * `reserve`d first and counts as a failure until it is `release`d (it succeeded) or `settle`d.
 */
export class FailureWindow {
  private readonly failures = new Map<string, Mark[]>();

  constructor(private readonly max: number, private readonly windowMs: number) {}

  private recent(key: string, now: number): Mark[] {
    const list = this.failures.get(key);
    if (list === undefined) return [];
    const kept = list.filter((m) => now - m.at < this.windowMs);
    if (kept.length === 0) this.failures.delete(key);
    else this.failures.set(key, kept);
    return kept;
  }

  retryAfter(key: string, now = Date.now()): number {
    const list = this.recent(key, now);
    if (list.length < this.max) return 0;
    const settled = list.filter((m) => !m.pending);
    if (settled.length >= this.max) return Math.max(1, Math.ceil((settled[settled.length - this.max].at + this.windowMs - now) / 1000));
    // Full only with attempts still being checked: they settle within one password hash.
    return 1;
  }

  private add(key: string, mark: Mark, now: number): void {
    const list = this.recent(key, now);
    list.push(mark);
    if (list.length > this.max * 2) list.splice(0, list.length - this.max * 2);
    this.failures.delete(key);
    this.failures.set(key, list);
    if (this.failures.size > MAX_RATE_KEYS) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }

  fail(key: string, now = Date.now()): void {
    this.add(key, { at: now, pending: false }, now);
  }

  /** Counts an attempt before its outcome is known; `release` or `settle` the mark afterwards. */
  reserve(key: string, now = Date.now()): Mark {
    const mark: Mark = { at: now, pending: true };
    this.add(key, mark, now);
    return mark;
  }

  /** The reserved attempt failed: it stays counted as a failure. */
  settle(mark: Mark): void {
    mark.pending = false;
  }

  /** The reserved attempt succeeded: it no longer counts. */
  release(key: string, mark: Mark): void {
    const list = this.failures.get(key);
    const i = list?.indexOf(mark) ?? -1;
    if (list !== undefined && i >= 0) list.splice(i, 1);
  }

  /** Forgets the failures of `key`; attempts of others still being checked stay counted. */
  clear(key: string): void {
    const list = this.failures.get(key);
    if (list === undefined) return;
    const pending = list.filter((m) => m.pending);
    if (pending.length === 0) this.failures.delete(key);
    else this.failures.set(key, pending);
  }
}

/** A login attempt holding its places in both windows; the first of the two calls counts. */
export interface LoginAttempt {
  /** The password was right: the attempt stops counting and the user's failures are forgotten. */
  succeeded(): void;
  /** The password was wrong: the attempt stays counted as a failure. */
  failed(): void;
}

/**
 * The two windows a login (or a credentials enrolment) passes through. An attempt is counted
 * before its password is checked (scrypt, ~50 ms), so attempts running at the same time cannot all
 * pass an empty window: at most LOGIN_FAILURES_PER_USER checks of one user run at once.
 */
export class LoginLimiter {
  readonly byUser = new FailureWindow(LOGIN_FAILURES_PER_USER, LOGIN_WINDOW_MS);
  readonly byPeer = new FailureWindow(LOGIN_FAILURES_PER_PEER, LOGIN_WINDOW_MS);

  /** Seconds to wait, or 0 when the attempt may proceed. */
  retryAfter(user: string, peer: string, now = Date.now()): number {
    return Math.max(this.byUser.retryAfter(user.toLowerCase(), now), this.byPeer.retryAfter(peer, now));
  }

  /** Reserves an attempt in both windows, or returns the seconds to wait when either is full. */
  begin(user: string, peer: string, now = Date.now()): LoginAttempt | number {
    const wait = this.retryAfter(user, peer, now);
    if (wait > 0) return wait;
    const userKey = user.toLowerCase();
    const u = this.byUser.reserve(userKey, now);
    const p = this.byPeer.reserve(peer, now);
    let done = false;
    return {
      succeeded: () => {
        if (done) return;
        done = true;
        this.byUser.release(userKey, u);
        this.byPeer.release(peer, p);
        this.byUser.clear(userKey);
      },
      failed: () => {
        if (done) return;
        done = true;
        this.byUser.settle(u);
        this.byPeer.settle(p);
      },
    };
  }
}
