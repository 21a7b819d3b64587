/**
 * Events, serialised once: the capture store writes each capture's JSON into its `event` column
 * and then hands the committed captures to the outputs (eve.json, syslog), which would stringify
 * the same object again. `rememberJson` stringifies and keeps the text beside the object (weakly:
 * it goes with the object); `fromJson` parses and keeps the text it came from; `jsonOf` returns
 * the kept text or stringifies. Events are never
 * changed after they are emitted (a capture whose count grows is emitted as a new object).
 * The text is kept on the object itself, under a symbol, not enumerable: JSON.stringify,
 * Object.keys and spread copies never see it. Not in a WeakMap: the main thread keeps every
 * capture it has not committed yet, and a WeakMap's entries are ephemerons that each garbage
 * collection walks (lookups, the write barrier and the ephemeron passes were ~6% of the main
 * thread's CPU at 450 Mbit/s, docs/performance.md).
 */
const KEPT: unique symbol = Symbol('hark.jsonText');
type WithText = { [KEPT]?: string };

/** Keeps `text` on `event`; a frozen or sealed object (no event is) keeps nothing rather than throw. */
function keep(event: object, text: string): void {
  if (Object.isExtensible(event)) Object.defineProperty(event, KEPT, { value: text, enumerable: false, writable: false, configurable: false });
}

/** JSON.stringify(event), kept for later `jsonOf` calls on the same object (or the text kept already). */
export function rememberJson(event: object): string {
  let text = (event as WithText)[KEPT];
  if (text === undefined) keep(event, (text = JSON.stringify(event)));
  return text;
}

/**
 * An event parsed from its JSON text, with the text kept as its serialisation: a worker thread
 * sends captures as JSON (cheaper to copy across threads than an object graph), and the main
 * thread then stores and writes that same text instead of stringifying the object again.
 */
export function fromJson(text: string): object {
  const event = JSON.parse(text) as object;
  keep(event, text);
  return event;
}

/** The text `rememberJson` kept for this object, else JSON.stringify(event) (not kept). */
export function jsonOf(event: object): string {
  return (event as WithText)[KEPT] ?? JSON.stringify(event);
}
