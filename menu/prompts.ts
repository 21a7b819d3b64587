/**
 * The console menu's questions, on inquirer: numbered choices, validated lines (asked again with a
 * message until acceptable), hidden passwords and Y/n confirmations. Ctrl-C inside a question
 * rejects with Cancelled, which the menu turns into "back to the menu". With an idle limit set,
 * a question left unanswered that long rejects with IdleTimeout, which locks the console.
 */
import inquirer from 'inquirer';
import type { Check } from './validate.js';

export class Cancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'Cancelled';
  }
}

export class IdleTimeout extends Error {
  constructor(readonly ms: number) {
    super(`no answer for ${Math.round(ms / 1000)} seconds`);
    this.name = 'IdleTimeout';
  }
}

/** How long any question may wait for its answer; undefined: for ever (the locked screen). */
let idleLimitMs: number | undefined;

export function setIdleLimit(ms: number | undefined): void {
  idleLimitMs = ms;
}

export interface Choice<T> {
  key?: string;
  name: string;
  value: T;
}

type Question = Record<string, unknown>;
type Prompt = (questions: Question[]) => Promise<Record<string, unknown>>;

async function one<T>(q: Question): Promise<T> {
  const limit = idleLimitMs;
  const idle = limit === undefined ? undefined : AbortSignal.timeout(limit);
  const prompt = (idle === undefined ? inquirer.prompt : inquirer.createPromptModule({ signal: idle })) as unknown as Prompt;
  try {
    const answers = await prompt([{ ...q, name: 'value' }]);
    return answers.value as T;
  } catch (err) {
    if (idle?.aborted === true && limit !== undefined) throw new IdleTimeout(limit);
    if ((err as Error)?.name === 'ExitPromptError' || (err as Error)?.name === 'AbortPromptError') throw new Cancelled();
    throw err;
  }
}

/** Numbered (or lettered) list; the user types the key and Enter. */
export function choose<T>(message: string, choices: Choice<T>[]): Promise<T> {
  return one<T>({ type: 'rawlist', message, choices: choices.map((c) => ({ key: c.key, name: c.name, value: c.value })), loop: false });
}

/** One line of text, trimmed, checked by `check` (the message is shown and the question asked again). */
export function ask(message: string, check?: Check, initial?: string): Promise<string> {
  const q: Question = {
    type: 'input',
    message,
    validate: (v: string) => check?.(v.trim()) ?? true,
    filter: (v: string) => v.trim(),
  };
  if (initial !== undefined && initial !== '') q.default = initial;
  return one<string>(q);
}

export function askSecret(message: string, check?: Check): Promise<string> {
  return one<string>({ type: 'password', message, mask: '*', validate: (v: string) => check?.(v) ?? true });
}

export function yesNo(message: string, initial: boolean): Promise<boolean> {
  return one<boolean>({ type: 'confirm', message, default: initial });
}

/** "Press Enter to return to the menu". */
export async function pause(): Promise<void> {
  await one<string>({ type: 'input', message: 'Press Enter to return to the menu' });
}

/** The console's input has ended (the terminal went away): nothing more can be asked. */
export function inputClosed(): boolean {
  return process.stdin.readableEnded || process.stdin.destroyed;
}
