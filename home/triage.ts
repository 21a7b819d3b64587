/**
 * Triage of a capture, shared by the operator API and the portal: the state (open, closed,
 * false_positive, escalated; the API's older names new / reviewed / dismissed map onto them), a
 * note kept in the capture's history, and an audit row. Input: an untrusted state and note.
 * Output: the triage record stored, or HttpError 400 / 404.
 */

import { HttpError } from './http.js';
import type { HomeStore } from './store.js';

/** States the portal offers, in the order it shows them. */
export const TRIAGE_STATES = ['open', 'escalated', 'closed', 'false_positive'] as const;
export type TriageState = typeof TRIAGE_STATES[number];
/** Names PROTOCOL.md's first version used, still accepted by the API. */
const LEGACY_STATES: Record<string, TriageState> = { new: 'open', reviewed: 'closed', dismissed: 'false_positive' };
/** A note is a paragraph or two; longer text belongs in the school's case system. */
export const MAX_NOTE_CHARS = 4000;

export const TRIAGE_LABELS: Record<TriageState, string> = { open: 'Open', escalated: 'Escalated', closed: 'Closed', false_positive: 'False positive' };

/** The canonical state for a name the API or a form sent, or undefined. */
export function triageState(v: unknown): TriageState | undefined {
  if (typeof v !== 'string') return undefined;
  if ((TRIAGE_STATES as readonly string[]).includes(v)) return v as TriageState;
  return LEGACY_STATES[v];
}

export interface TriageRecord { status: string; note: string; by: string; at: string }

/** Sets the state of capture `id`, adds the note to its history and audits it. */
export function applyTriage(store: HomeStore, id: string, given: unknown, note: string, who: string, peer: string): TriageRecord {
  const state = triageState(given);
  if (state === undefined) {
    throw new HttpError(400, 'E_FIELD', `"status" must be one of ${[...TRIAGE_STATES, ...Object.keys(LEGACY_STATES)].join(', ')}`);
  }
  if (note.length > MAX_NOTE_CHARS) throw new HttpError(400, 'E_FIELD', `"note" is longer than ${MAX_NOTE_CHARS} characters`);
  const record: TriageRecord = { status: given as string, note, by: who, at: new Date().toISOString() };
  const found = store.transaction(() => {
    if (!store.setTriage(id, JSON.stringify(record), state)) return false;
    store.sql.prepare('INSERT INTO capture_notes (capture_id, at, who, status, note) VALUES (?, ?, ?, ?, ?)').run(id, record.at, who, state, note);
    // The note text stays out of the audit detail: it may quote the capture.
    store.audit(who, 'capture.triage', `capture:${id}`, { status: state, note: note !== '' }, peer);
    return true;
  });
  if (!found) throw new HttpError(404, 'E_NOT_FOUND', `No capture "${id.slice(0, 64)}"`);
  return record;
}
