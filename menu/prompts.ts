/**
 * The console menu's questions, on inquirer: numbered choices, validated lines (asked again with a
 * message until acceptable), hidden passwords and Y/n confirmations. Ctrl-C inside a question
 * rejects with Cancelled, which the menu turns into "back to the menu".
 */
import inquirer from 'inquirer';
import type { Check } from './validate.js';

export class Cancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'Cancelled';
  }
}

export interface Choice<T> {
  key?: string;
  name: string;
  value: T;
}

type Question = Record<string, unknown>;
const prompt = inquirer.prompt as unknown as (questions: Question[]) => Promise<Record<string, unknown>>;

async function one<T>(q: Question): Promise<T> {
  try {
    const answers = await prompt([{ ...q, name: 'value' }]);
    return answers.value as T;
  } catch (err) {
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
