/**
 * Creates a directory (and its missing parents) readable only by its owner (0700): captures,
 * streams and databases hold personal data. Component by component rather than
 * `mkdirSync(..., { recursive: true })`, which spins forever under /proc on Node 20; a component
 * that exists but is not a directory, or cannot be created, is a typed error naming it.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export class DirectoryError extends Error {
  readonly code = 'E_DIRECTORY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function ensurePrivateDir(path: string): void {
  const missing: string[] = [];
  let p = resolve(path);
  for (;;) {
    let st;
    try {
      st = statSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new DirectoryError(`Cannot create directory "${path}": ${(err as Error).message}`, { cause: err });
      missing.push(p);
      const up = dirname(p);
      if (up === p) break;
      p = up;
      continue;
    }
    if (!st.isDirectory()) throw new DirectoryError(`Cannot create directory "${path}": "${p}" exists and is not a directory`);
    break;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new DirectoryError(`Cannot create directory "${dir}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  }
}
