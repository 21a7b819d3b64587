/**
 * CLI: one secret line (a site key, an operator's password) from a file, a pipe or the terminal.
 * Input: where (a path, or "-" / nothing for standard input), what it is (for messages), a prompt.
 * Output: the first line without its line ending, exactly as typed (spaces kept). Guarantee: a
 * terminal never echoes it; at most `maxBytes` are read and reading stops at the first
 * newline, so a pipe that never ends (or /dev/zero) cannot fill memory; every failure is a one-line
 * CliError naming the file or stream.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CliError } from './command.js';

/** Exit status of a cancelled prompt (usage errors are 2). */
const EXIT_CANCELLED = 1;

export interface SecretLineSource {
  /** A file; "-" or undefined: standard input (`input`). */
  path: string | undefined;
  /** What the line is, for messages: "site key", "password". */
  what: string;
  /** Shown before reading from a terminal. */
  prompt: string;
  /** Bytes read at most, the line and its newline: a longer first line is refused. */
  maxBytes: number;
  /** Standard input by default; another stream in tests. */
  input?: NodeJS.ReadableStream;
}

/** The first line of the source; a CliError (exit 2) when it cannot be read, is empty or is too long. */
export async function readSecretLine(source: SecretLineSource): Promise<string> {
  const { path, what, maxBytes } = source;
  const input = source.input ?? process.stdin;
  const fromFile = path !== undefined && path !== '-';
  const where = fromFile ? `the ${what} file "${path}"` : 'standard input';
  let text: string;
  if (fromFile) text = readFileStart(path, what, maxBytes);
  else if (input === process.stdin && process.stdin.isTTY) text = await readSecret(source.prompt);
  else text = await readFirstLine(input, maxBytes);
  const line = text.split('\n')[0].replace(/\r$/, '');
  if (line === '') throw new CliError(`No ${what} in ${where}: its first line is empty`);
  if (Buffer.byteLength(text) >= maxBytes && !text.includes('\n')) {
    throw new CliError(`No ${what} in ${where}: its first line is longer than ${maxBytes} bytes`);
  }
  return line;
}

/** Reads a line from the terminal without echo (raw mode); Ctrl-C cancels. */
export function readSecret(prompt: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) return Promise.reject(new CliError('No terminal to read the password from: set $HARK_PASSWORD', 2));
  process.stdout.write(prompt);
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (err?: Error): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stdout.write('\n');
      if (err !== undefined) reject(err);
      else resolve(text);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new CliError('Cancelled', EXIT_CANCELLED));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    input.setRawMode(true);
    input.resume();
    input.on('data', onData);
  });
}

function readFileStart(path: string, what: string, maxBytes: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.alloc(maxBytes);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    return buf.subarray(0, n).toString('utf8');
  } catch (err) {
    throw new CliError(`Cannot read the ${what} file "${path}": ${why(err as NodeJS.ErrnoException)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function why(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT': return 'no such file';
    case 'EISDIR': return 'is a directory';
    case 'EACCES': return 'permission denied';
    default: return err.code ?? err.message;
  }
}

function readFirstLine(input: NodeJS.ReadableStream, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const done = (err?: Error): void => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      if (err !== undefined) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onData = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      chunks.push(b);
      bytes += b.length;
      if (b.includes(0x0a) || bytes >= maxBytes) done();
    };
    const onEnd = (): void => done();
    const onError = (err: Error): void => done(new CliError(`Cannot read from standard input: ${err.message}`));
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
  });
}
