/**
 * Pack reader: Hark's own JSON dictionary format (name, version, description, optional
 * per-category default severities, phrases), described by rules/pack.schema.json.
 * Input: file bytes or text. Output: the phrases that pass, each with the line its object starts
 * on, and problems with lines (and columns for syntax errors). Duplicates are check.ts's job.
 */

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Phrase } from './dictionary.js';
import {
  assertSupportedSchema, parseLocatedJson, validateLocated,
  type LocatedJson, type LocatedMember, type SchemaNode,
} from './json-located.js';
import {
  categoryKey, checkRowTexts, decodeDictionaryBytes, MAX_PHRASES, quote,
  type DictionaryProblem, type LocatedPhrase, type ReadResult,
} from './problems.js';

/** Where the schema lives: beside this module when run from source, in rules/ when run from dist/. */
const SCHEMA_CANDIDATES = ['./pack.schema.json', '../../rules/pack.schema.json'];

let cachedSchema: SchemaNode | undefined;

/** Path of rules/pack.schema.json as this module finds it. */
export function packSchemaPath(): string {
  for (const candidate of SCHEMA_CANDIDATES) {
    const path = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error(`Cannot find the pack schema: none of ${SCHEMA_CANDIDATES.join(', ')} exists beside ${fileURLToPath(import.meta.url)}`);
}

/** The pack schema, read once and checked to use only keywords the validator enforces. */
export function packSchema(): SchemaNode {
  if (cachedSchema === undefined) {
    const schema = JSON.parse(readFileSync(packSchemaPath(), 'utf8')) as SchemaNode;
    assertSupportedSchema(schema);
    cachedSchema = schema;
  }
  return cachedSchema;
}

export interface PackCategory {
  readonly severity?: Phrase['severity'];
  readonly description?: string;
}

export interface PackReadResult extends ReadResult {
  readonly version?: string;
  readonly description?: string;
  /** Declared categories by name as written; empty when the pack declares none. */
  readonly categories: ReadonlyMap<string, PackCategory>;
}

function member(node: LocatedJson, key: string): LocatedMember | undefined {
  if (node.kind !== 'object') return undefined;
  for (const m of node.members) if (m.key === key) return m;
  return undefined;
}

function stringOf(node: LocatedJson | undefined): string | undefined {
  return node?.kind === 'string' ? node.value : undefined;
}

function severityOf(node: LocatedJson | undefined): Phrase['severity'] | undefined {
  if (node?.kind !== 'number' || !Number.isInteger(node.value) || node.value < 1 || node.value > 5) return undefined;
  return node.value as Phrase['severity'];
}

function stringsOf(node: LocatedJson | undefined): string[] {
  if (node?.kind !== 'array') return [];
  const out: string[] = [];
  for (const item of node.items) if (item.kind === 'string') out.push(item.value);
  return out;
}

function touchesBadLine(node: LocatedJson, badLines: ReadonlySet<number>): boolean {
  if (badLines.size === 0) return false;
  if (badLines.has(node.line)) return true;
  if (node.kind === 'object') return node.members.some((m) => badLines.has(m.line) || touchesBadLine(m.value, badLines));
  if (node.kind === 'array') return node.items.some((item) => touchesBadLine(item, badLines));
  return false;
}

/**
 * Reads a pack. `fallbackName` names the dictionary when the pack's own "name" is unusable.
 * Never throws on file content: every problem comes back in `problems` with its line.
 */
export function parsePackDictionary(source: Uint8Array | string, fallbackName: string): PackReadResult {
  const problems: DictionaryProblem[] = [];
  const entries: LocatedPhrase[] = [];
  const categories = new Map<string, PackCategory>();
  const empty = (): PackReadResult => ({ name: fallbackName, entries, problems, categories });

  const decoded = decodeDictionaryBytes(source, problems);
  if (decoded === undefined) return empty();
  const parsed = parseLocatedJson(decoded.text);
  if (!parsed.ok) {
    const e = parsed.error;
    problems.push({ line: e.line, column: e.column, level: 'error', code: e.code, reason: `JSON syntax error: ${e.message}` });
    return empty();
  }
  const root = parsed.value;

  const badRows = new Set<number>();
  const issues = [...parsed.duplicateKeys, ...validateLocated(packSchema(), root)];
  issues.sort((a, b) => a.line - b.line || a.column - b.column);
  for (const issue of issues) {
    problems.push({ line: issue.line, level: 'error', code: issue.code, reason: issue.message });
    if (issue.path[0] === 'phrases' && typeof issue.path[1] === 'number') badRows.add(issue.path[1]);
  }

  const phrasesNode = member(root, 'phrases')?.value;
  if (root.kind !== 'object' || phrasesNode?.kind !== 'array') return empty();

  const name = stringOf(member(root, 'name')?.value)?.trim() || fallbackName;
  const version = stringOf(member(root, 'version')?.value);
  const description = stringOf(member(root, 'description')?.value);

  const categoriesNode = member(root, 'categories')?.value;
  const declared = new Map<string, PackCategory & { readonly name: string }>();
  if (categoriesNode?.kind === 'object') {
    for (const c of categoriesNode.members) {
      const category: PackCategory = {
        severity: severityOf(member(c.value, 'severity')?.value),
        description: stringOf(member(c.value, 'description')?.value),
      };
      categories.set(c.key, category);
      if (!declared.has(categoryKey(c.key))) declared.set(categoryKey(c.key), { ...category, name: c.key });
    }
  }

  let overLimit = false;
  phrasesNode.items.forEach((item, index) => {
    if (badRows.has(index) || item.kind !== 'object') return;
    if (touchesBadLine(item, decoded.badLines)) return;
    const line = item.line;
    let errors = 0;
    const categoryText = stringOf(member(item, 'category')?.value) ?? '';
    const categoryDefaults = declared.get(categoryKey(categoryText));
    if (categoriesNode?.kind === 'object' && categoryDefaults === undefined && categoryText.trim().length > 0) {
      const known = [...categories.keys()].map(quote).join(', ');
      problems.push({ line, level: 'error', code: 'category.undeclared', reason: `category ${quote(categoryText)} is not declared in "categories" (declared: ${known})` });
      errors++;
    }
    const severity = severityOf(member(item, 'severity')?.value) ?? categoryDefaults?.severity;
    if (severity === undefined) {
      problems.push({ line, level: 'error', code: 'severity.missing', reason: 'severity is missing (and its category gives no default)' });
      errors++;
    }
    const embeddedNode = member(item, 'embedded')?.value;
    const embedded = embeddedNode?.kind === 'boolean' ? embeddedNode.value : false;
    const checked = checkRowTexts({
      phrase: stringOf(member(item, 'phrase')?.value) ?? '',
      category: categoryText,
      exclusions: stringsOf(member(item, 'exclusions')?.value),
      languages: stringsOf(member(item, 'languages')?.value),
      embedded,
    }, line, problems);
    errors += checked.errors;
    if (errors > 0 || severity === undefined) return;
    if (entries.length >= MAX_PHRASES) {
      if (!overLimit) problems.push({ line, level: 'error', code: 'dictionary.too_many', reason: `more than ${MAX_PHRASES} phrases; phrases from this line on are not loaded` });
      overLimit = true;
      return;
    }
    entries.push({
      line,
      key: checked.clean.key,
      phrase: {
        phrase: checked.clean.phrase,
        // A declared category is stored as the declaration spells it ("Weapons" -> "weapons").
        category: categoryDefaults?.name ?? checked.clean.category,
        severity,
        embedded,
        exclusions: checked.clean.exclusions,
        languages: checked.clean.languages,
      },
    });
  });

  problems.sort((a, b) => a.line - b.line);
  return { name, version, description, entries, problems, categories };
}
