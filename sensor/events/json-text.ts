/**
 * Events, serialised once: the capture store writes each capture's JSON into its `event` column
 * and then hands the committed captures to the outputs (eve.json, syslog), which would stringify
 * the same object again. `rememberJson` stringifies and keeps the text beside the object (weakly:
 * it goes with the object); `jsonOf` returns the kept text or stringifies. Events are never
 * changed after they are emitted (a capture whose count grows is emitted as a new object).
 */
const kept = new WeakMap<object, string>();

/** JSON.stringify(event), kept for later `jsonOf` calls on the same object. */
export function rememberJson(event: object): string {
  const text = JSON.stringify(event);
  kept.set(event, text);
  return text;
}

/** The text `rememberJson` kept for this object, else JSON.stringify(event) (not kept). */
export function jsonOf(event: object): string {
  return kept.get(event) ?? JSON.stringify(event);
}
