/**
 * Position-aware JSON for dictionary packs: a strict RFC 8259 parser that keeps the line and column
 * of every value and member, and a validator for the subset of JSON Schema 2020-12 that
 * pack.schema.json uses. Input: text. Output: a located tree or one syntax error with line and
 * column; validation errors carry the path and line of the offending value. Never throws on input.
 */

export interface Position {
  readonly line: number;
  readonly column: number;
}

export type LocatedJson =
  | (Position & { readonly kind: 'object'; readonly members: readonly LocatedMember[] })
  | (Position & { readonly kind: 'array'; readonly items: readonly LocatedJson[] })
  | (Position & { readonly kind: 'string'; readonly value: string })
  | (Position & { readonly kind: 'number'; readonly value: number })
  | (Position & { readonly kind: 'boolean'; readonly value: boolean })
  | (Position & { readonly kind: 'null' });

export interface LocatedMember extends Position {
  readonly key: string;
  readonly value: LocatedJson;
}

export type JsonPath = readonly (string | number)[];

export interface JsonIssue extends Position {
  readonly path: JsonPath;
  readonly code: string;
  readonly message: string;
}

export type LocatedParse =
  | { readonly ok: true; readonly value: LocatedJson; readonly duplicateKeys: JsonIssue[] }
  | { readonly ok: false; readonly error: JsonIssue };

/** Packs nest four deep; the bound keeps hostile input from exhausting the stack. */
export const MAX_JSON_DEPTH = 64;

/** Up to this many members a linear scan finds repeated keys faster than a Map. */
const SMALL_OBJECT_MEMBERS = 16;

class SyntaxFailure {
  constructor(readonly message: string, readonly line: number, readonly column: number) {}
}

function describeChar(c: number): string {
  if (Number.isNaN(c)) return 'the end of the file';
  if (c < 0x20) return `control character U+${c.toString(16).padStart(4, '0').toUpperCase()}`;
  return JSON.stringify(String.fromCharCode(c));
}

class LocatedParser {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  readonly duplicateKeys: JsonIssue[] = [];
  private readonly path: (string | number)[] = [];

  constructor(private readonly text: string) {}

  private fail(message: string, at = this.pos): never {
    throw new SyntaxFailure(message, this.line, at - this.lineStart + 1);
  }

  private column(): number {
    return this.pos - this.lineStart + 1;
  }

  private skipWhitespace(): void {
    const t = this.text;
    for (;;) {
      const c = t.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09) this.pos++;
      else if (c === 0x0a || (c === 0x0d && t.charCodeAt(this.pos + 1) !== 0x0a)) {
        this.pos++;
        this.line++;
        this.lineStart = this.pos;
      } else if (c === 0x0d) this.pos++;
      else return;
    }
  }

  parseDocument(): LocatedJson {
    this.skipWhitespace();
    const value = this.parseValue(0);
    this.skipWhitespace();
    if (this.pos < this.text.length) this.fail(`unexpected ${describeChar(this.text.charCodeAt(this.pos))} after the end of the document`);
    return value;
  }

  private parseValue(depth: number): LocatedJson {
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH} levels`);
    const c = this.text.charCodeAt(this.pos);
    const line = this.line;
    const column = this.column();
    switch (c) {
      case 0x7b: return this.parseObject(depth, line, column);
      case 0x5b: return this.parseArray(depth, line, column);
      case 0x22: return { kind: 'string', value: this.parseString(), line, column };
      case 0x74: this.literal('true'); return { kind: 'boolean', value: true, line, column };
      case 0x66: this.literal('false'); return { kind: 'boolean', value: false, line, column };
      case 0x6e: this.literal('null'); return { kind: 'null', line, column };
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return { kind: 'number', value: this.parseNumber(), line, column };
        if (c === 0x27) this.fail('strings must use double quotes, not single quotes');
        return this.fail(`expected a value, found ${describeChar(c)}`);
    }
  }

  private literal(word: string): void {
    if (this.text.startsWith(word, this.pos)) {
      this.pos += word.length;
      return;
    }
    this.fail(`expected a value, found ${JSON.stringify(this.text.slice(this.pos, this.pos + word.length))}`);
  }

  private parseObject(depth: number, line: number, column: number): LocatedJson {
    this.pos++;
    const members: LocatedMember[] = [];
    // Small objects (every phrase) scan their members for a repeated key; big ones use a map.
    let seen: Map<string, number> | undefined;
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return { kind: 'object', members, line, column };
    }
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== 0x22) {
        this.fail(`expected a member name in double quotes, found ${describeChar(this.text.charCodeAt(this.pos))}`);
      }
      const keyLine = this.line;
      const keyColumn = this.column();
      const key = this.parseString();
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail(`expected ":" after member name ${JSON.stringify(key)}, found ${describeChar(this.text.charCodeAt(this.pos))}`);
      this.pos++;
      this.skipWhitespace();
      this.path.push(key);
      const value = this.parseValue(depth + 1);
      let firstLine: number | undefined;
      if (seen !== undefined) {
        firstLine = seen.get(key);
      } else {
        for (const m of members) {
          if (m.key === key) {
            firstLine = m.line;
            break;
          }
        }
        if (members.length >= SMALL_OBJECT_MEMBERS) {
          seen = new Map();
          for (const m of members) if (!seen.has(m.key)) seen.set(m.key, m.line);
        }
      }
      if (firstLine !== undefined) {
        this.duplicateKeys.push({ line: keyLine, column: keyColumn, path: [...this.path], code: 'json.duplicate_key', message: `member ${JSON.stringify(key)} appears twice (first on line ${firstLine}); JSON readers silently keep only one` });
      } else {
        seen?.set(key, keyLine);
      }
      this.path.pop();
      members.push({ key, value, line: keyLine, column: keyColumn });
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.skipWhitespace();
        if (this.text.charCodeAt(this.pos) === 0x7d) this.fail('trailing comma before "}"');
        continue;
      }
      if (c === 0x7d) {
        this.pos++;
        return { kind: 'object', members, line, column };
      }
      this.fail(`expected "," or "}" after a member, found ${describeChar(c)}`);
    }
  }

  private parseArray(depth: number, line: number, column: number): LocatedJson {
    this.pos++;
    const items: LocatedJson[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return { kind: 'array', items, line, column };
    }
    for (;;) {
      this.path.push(items.length);
      items.push(this.parseValue(depth + 1));
      this.path.pop();
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.skipWhitespace();
        if (this.text.charCodeAt(this.pos) === 0x5d) this.fail('trailing comma before "]"');
        continue;
      }
      if (c === 0x5d) {
        this.pos++;
        return { kind: 'array', items, line, column };
      }
      this.fail(`expected "," or "]" after an array item, found ${describeChar(c)}`);
    }
  }

  private parseString(): string {
    const t = this.text;
    this.pos++;
    let out = '';
    let segStart = this.pos;
    for (;;) {
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(segStart, this.pos);
        this.pos++;
        return out;
      }
      if (Number.isNaN(c)) this.fail('string is never closed');
      if (c < 0x20) this.fail(`${describeChar(c)} inside a string (a line break must be written \\n)`);
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(segStart, this.pos);
      const e = t.charCodeAt(this.pos + 1);
      switch (e) {
        case 0x22: out += '"'; break;
        case 0x5c: out += '\\'; break;
        case 0x2f: out += '/'; break;
        case 0x62: out += '\b'; break;
        case 0x66: out += '\f'; break;
        case 0x6e: out += '\n'; break;
        case 0x72: out += '\r'; break;
        case 0x74: out += '\t'; break;
        case 0x75: {
          const hex = t.slice(this.pos + 2, this.pos + 6);
          if (!/^[0-9A-Fa-f]{4}$/.test(hex)) this.fail('\\u must be followed by four hex digits');
          out += String.fromCharCode(parseInt(hex, 16));
          this.pos += 4;
          break;
        }
        default:
          this.fail(`unknown escape \\${Number.isNaN(e) ? '' : String.fromCharCode(e)} in a string`);
      }
      this.pos += 2;
      segStart = this.pos;
    }
  }

  private parseNumber(): number {
    const t = this.text;
    const start = this.pos;
    const digits = (): number => {
      const from = this.pos;
      while (t.charCodeAt(this.pos) >= 0x30 && t.charCodeAt(this.pos) <= 0x39) this.pos++;
      return this.pos - from;
    };
    if (t.charCodeAt(this.pos) === 0x2d) this.pos++;
    if (t.charCodeAt(this.pos) === 0x30) {
      this.pos++;
      if (t.charCodeAt(this.pos) >= 0x30 && t.charCodeAt(this.pos) <= 0x39) this.fail('numbers must not have leading zeros', start);
    } else if (digits() === 0) {
      this.fail('expected a digit', this.pos);
    }
    if (t.charCodeAt(this.pos) === 0x2e) {
      this.pos++;
      if (digits() === 0) this.fail('expected a digit after the decimal point');
    }
    const e = t.charCodeAt(this.pos);
    if (e === 0x65 || e === 0x45) {
      this.pos++;
      const s = t.charCodeAt(this.pos);
      if (s === 0x2b || s === 0x2d) this.pos++;
      if (digits() === 0) this.fail('expected a digit in the exponent');
    }
    return Number(t.slice(start, this.pos));
  }
}

/** Parses JSON text (BOM already stripped) keeping positions. Never throws on the text. */
export function parseLocatedJson(text: string): LocatedParse {
  const parser = new LocatedParser(text);
  try {
    const value = parser.parseDocument();
    return { ok: true, value, duplicateKeys: parser.duplicateKeys };
  } catch (err) {
    if (err instanceof SyntaxFailure) {
      return { ok: false, error: { line: err.line, column: err.column, path: [], code: 'json.syntax', message: err.message } };
    }
    if (err instanceof RangeError) {
      return { ok: false, error: { line: 1, column: 1, path: [], code: 'json.syntax', message: 'document is nested too deeply' } };
    }
    throw err;
  }
}

/** A JSON Schema as read from a file: plain JSON. */
export type SchemaNode = { readonly [keyword: string]: unknown };

/** Keywords the validator enforces; anything else in a schema (except annotations) is refused. */
const ASSERTION_KEYWORDS = new Set([
  '$ref', 'type', 'properties', 'required', 'additionalProperties', 'items', 'minItems',
  'minLength', 'maxLength', 'minimum', 'maximum', 'enum', 'pattern',
]);
const ANNOTATION_KEYWORDS = new Set(['$schema', '$id', '$defs', '$comment', 'title', 'description', 'default', 'examples']);

/**
 * Checks that a schema uses only the keywords this validator understands, so a schema edit can
 * never be silently unenforced. Throws (a programming error in our own schema file, not input).
 */
export function assertSupportedSchema(schema: SchemaNode, where = '#'): void {
  for (const [keyword, value] of Object.entries(schema)) {
    if (!ASSERTION_KEYWORDS.has(keyword) && !ANNOTATION_KEYWORDS.has(keyword)) {
      throw new Error(`Cannot use schema: keyword "${keyword}" at ${where} is not supported by rules/json-located.ts`);
    }
    if (keyword === 'properties' || keyword === '$defs') {
      for (const [name, sub] of Object.entries(value as Record<string, SchemaNode>)) assertSupportedSchema(sub, `${where}/${keyword}/${name}`);
    } else if ((keyword === 'items' || keyword === 'additionalProperties') && typeof value === 'object' && value !== null) {
      assertSupportedSchema(value as SchemaNode, `${where}/${keyword}`);
    } else if (keyword === '$ref' && (typeof value !== 'string' || !value.startsWith('#/$defs/'))) {
      throw new Error(`Cannot use schema: $ref ${JSON.stringify(value)} at ${where} is not a local "#/$defs/..." reference`);
    }
  }
}

const TYPE_NAMES: Record<string, string> = {
  object: 'an object', array: 'an array', string: 'a string', number: 'a number',
  integer: 'an integer', boolean: 'true or false', null: 'null',
};

function describeValue(node: LocatedJson): string {
  switch (node.kind) {
    case 'string': return `the string ${JSON.stringify(node.value)}`;
    case 'number': return `the number ${node.value}`;
    case 'boolean': return String(node.value);
    case 'null': return 'null';
    default: return TYPE_NAMES[node.kind];
  }
}

function hasType(node: LocatedJson, type: string): boolean {
  if (type === 'integer') return node.kind === 'number' && Number.isInteger(node.value);
  return node.kind === type;
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

const resolvedRefs = new WeakMap<SchemaNode, Map<string, SchemaNode>>();

function resolveRef(root: SchemaNode, ref: string): SchemaNode {
  let cache = resolvedRefs.get(root);
  if (cache === undefined) {
    cache = new Map();
    resolvedRefs.set(root, cache);
  }
  const known = cache.get(ref);
  if (known !== undefined) return known;
  const defs = root.$defs as Record<string, SchemaNode> | undefined;
  const target = defs?.[ref.slice('#/$defs/'.length)];
  if (target === undefined) throw new Error(`Cannot use schema: $ref "${ref}" does not exist`);
  cache.set(ref, target);
  return target;
}

/**
 * Validates a located tree against a schema using the keywords in ASSERTION_KEYWORDS.
 * Values are named in messages by their member name or `parent[i]`. Once a value has the wrong
 * type its other keywords are not checked, so one mistake gives one message.
 */
export function validateLocated(schema: SchemaNode, node: LocatedJson): JsonIssue[] {
  const out: JsonIssue[] = [];
  validateNode(schema, node, schema, [], out);
  return out;
}

/** How messages name the value at `path`: its member name, `parent[i]` for items, or `document`. */
export function labelOf(path: readonly (string | number)[], end = path.length): string {
  if (end === 0) return 'document';
  const last = path[end - 1];
  return typeof last === 'string' ? last : `${labelOf(path, end - 1)}[${last}]`;
}

function report(out: JsonIssue[], at: Position, path: readonly (string | number)[], code: string, message: string): void {
  out.push({ line: at.line, column: at.column, path: path.slice(), code, message });
}

/** `path` is one mutable stack for the whole walk; only a reported issue copies it. */
function validateNode(schema: SchemaNode, node: LocatedJson, root: SchemaNode, path: (string | number)[], out: JsonIssue[]): void {
  if (typeof schema.$ref === 'string') {
    const before = out.length;
    validateNode(resolveRef(root, schema.$ref), node, root, path, out);
    if (out.length > before) return;
  }

  const type = schema.type;
  if (type !== undefined) {
    const ok = typeof type === 'string' ? hasType(node, type) : (type as string[]).some((t) => hasType(node, t));
    if (!ok) {
      const types = typeof type === 'string' ? [type] : (type as string[]);
      const wanted = types.map((t) => TYPE_NAMES[t] ?? t).join(' or ');
      report(out, node, path, 'schema.type', `${labelOf(path)} must be ${wanted}, not ${describeValue(node)}`);
      return;
    }
  }

  if (schema.enum !== undefined) {
    const allowed = schema.enum as unknown[];
    const value = node.kind === 'object' || node.kind === 'array' ? undefined : node.kind === 'null' ? null : node.value;
    if (!allowed.some((a) => a === value)) report(out, node, path, 'schema.enum', `${labelOf(path)} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, not ${describeValue(node)}`);
  }

  switch (node.kind) {
    case 'string': {
      const min = schema.minLength as number | undefined;
      const max = schema.maxLength as number | undefined;
      if (min !== undefined || max !== undefined) {
        const len = codePoints(node.value);
        if (min !== undefined && len < min) report(out, node, path, 'schema.length', min === 1 ? `${labelOf(path)} is empty` : `${labelOf(path)} is shorter than ${min} characters`);
        if (max !== undefined && len > max) report(out, node, path, 'schema.length', `${labelOf(path)} is ${len} characters, more than the ${max} limit`);
      }
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(node.value)) {
        report(out, node, path, 'schema.pattern', `${labelOf(path)} ${JSON.stringify(node.value)} does not match the pattern ${schema.pattern}`);
      }
      return;
    }
    case 'number': {
      const min = schema.minimum as number | undefined;
      const max = schema.maximum as number | undefined;
      if ((min !== undefined && node.value < min) || (max !== undefined && node.value > max)) {
        if (min !== undefined && max !== undefined) report(out, node, path, 'schema.range', `${labelOf(path)} ${node.value} is not ${min}-${max}`);
        else if (min !== undefined) report(out, node, path, 'schema.range', `${labelOf(path)} ${node.value} is less than ${min}`);
        else report(out, node, path, 'schema.range', `${labelOf(path)} ${node.value} is more than ${max}`);
      }
      return;
    }
    case 'array': {
      const minItems = schema.minItems as number | undefined;
      if (minItems !== undefined && node.items.length < minItems) report(out, node, path, 'schema.min_items', `${labelOf(path)} must have at least ${minItems} item${minItems === 1 ? '' : 's'}`);
      const items = schema.items as SchemaNode | undefined;
      if (items === undefined) return;
      for (let i = 0; i < node.items.length; i++) {
        path.push(i);
        validateNode(items, node.items[i], root, path, out);
        path.pop();
      }
      return;
    }
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, SchemaNode>;
      const required = schema.required as string[] | undefined;
      if (required !== undefined) {
        for (const key of required) {
          if (!node.members.some((m) => m.key === key)) report(out, node, path, 'schema.required', `${key} is missing`);
        }
      }
      const additional = schema.additionalProperties as boolean | SchemaNode | undefined;
      for (const member of node.members) {
        const sub = Object.hasOwn(properties, member.key) ? properties[member.key] : undefined;
        path.push(member.key);
        if (sub !== undefined) {
          validateNode(sub, member.value, root, path, out);
        } else if (additional === false) {
          report(out, member, path, 'schema.unknown_field', `unknown field ${JSON.stringify(member.key)} (known: ${Object.keys(properties).join(', ')})`);
        } else if (typeof additional === 'object') {
          validateNode(additional, member.value, root, path, out);
        }
        path.pop();
      }
      return;
    }
    default:
      return;
  }
}
