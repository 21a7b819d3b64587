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

/**
 * Failures per key in a sliding window. `retryAfter(key)` is 0 when allowed, else the seconds
 * until the oldest failure in the window ages out.
 */
export class FailureWindow {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly max: number, private readonly windowMs: number) {}

  private recent(key: string, now: number): number[] {
    const list = this.failures.get(key);
    if (list === undefined) return [];
    const kept = list.filter((t) => now - t < this.windowMs);
    if (kept.length === 0) this.failures.delete(key);
    else this.failures.set(key, kept);
    return kept;
  }

  retryAfter(key: string, now = Date.now()): number {
    const list = this.recent(key, now);
    if (list.length < this.max) return 0;
    return Math.max(1, Math.ceil((list[list.length - this.max] + this.windowMs - now) / 1000));
  }

  fail(key: string, now = Date.now()): void {
    const list = this.recent(key, now);
    list.push(now);
    if (list.length > this.max * 2) list.splice(0, list.length - this.max * 2);
    this.failures.delete(key);
    this.failures.set(key, list);
    if (this.failures.size > MAX_RATE_KEYS) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }

  clear(key: string): void {
    this.failures.delete(key);
  }
}

/** The two windows a login (or a credentials enrolment) passes through. */
export class LoginLimiter {
  readonly byUser = new FailureWindow(LOGIN_FAILURES_PER_USER, LOGIN_WINDOW_MS);
  readonly byPeer = new FailureWindow(LOGIN_FAILURES_PER_PEER, LOGIN_WINDOW_MS);

  /** Seconds to wait, or 0 when the attempt may proceed. */
  retryAfter(user: string, peer: string, now = Date.now()): number {
    return Math.max(this.byUser.retryAfter(user.toLowerCase(), now), this.byPeer.retryAfter(peer, now));
  }

  fail(user: string, peer: string, now = Date.now()): void {
    this.byUser.fail(user.toLowerCase(), now);
    this.byPeer.fail(peer, now);
  }

  succeed(user: string): void {
    this.byUser.clear(user.toLowerCase());
  }
}
