/**
 * Test helper: validates emitted events against the repository's JSON schemas with Ajv (draft
 * 2020-12). Every capture a test sees goes through `assertCapture`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

interface Validator {
  (data: unknown): boolean;
  errors?: unknown[] | null;
}
interface AjvLike {
  compile(schema: object): Validator;
  errorsText(errors?: unknown[] | null): string;
}

// Ajv is CommonJS; require() gives the constructor without ESM default-export guesswork.
const Ajv2020 = createRequire(import.meta.url)('ajv/dist/2020.js') as new (opts: object) => AjvLike;
const schemaPath = fileURLToPath(new URL('../../../sensor/events/capture.schema.json', import.meta.url));
const ajv = new Ajv2020({ allErrors: true, strict: true });
const validateCapture = ajv.compile(JSON.parse(readFileSync(schemaPath, 'utf8')));

const validateTls = ajv.compile(JSON.parse(readFileSync(fileURLToPath(new URL('../../../sensor/events/tls.schema.json', import.meta.url)), 'utf8')));

export function assertTlsEvent(event: unknown): void {
  const ok = validateTls(event);
  assert.ok(ok, `tls event does not match tls.schema.json: ${ajv.errorsText(validateTls.errors)}\n${JSON.stringify(event)}`);
}

const validateDns = ajv.compile(JSON.parse(readFileSync(fileURLToPath(new URL('../../../sensor/events/dns.schema.json', import.meta.url)), 'utf8')));

export function assertDnsEvent(event: unknown): void {
  const ok = validateDns(event);
  assert.ok(ok, `dns event does not match dns.schema.json: ${ajv.errorsText(validateDns.errors)}\n${JSON.stringify(event)}`);
}

export function assertCapture(event: unknown): void {
  const ok = validateCapture(event);
  assert.ok(ok, `capture does not match capture.schema.json: ${ajv.errorsText(validateCapture.errors)}\n${JSON.stringify(event)}`);
}
