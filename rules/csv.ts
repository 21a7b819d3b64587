/**
 * CSV dictionary reader: the `phrase,category,severity,embedded` layout safeguarding products
 * export, plus optional `exclusions` and `languages` columns (values separated by `|`).
 * Input: file bytes (UTF-8, BOM stripped) or text; RFC 4180 quoting; CRLF, LF or lone CR lines.
 * Output: the rows that pass, each with the physical line its record starts on, and a problem for
 * every row that does not. Duplicates across rows are check.ts's job.
 */

import type { Phrase } from './dictionary.js';
import {
  checkRowTexts, decodeDictionaryBytes, MAX_PHRASES, quote,
  type DictionaryProblem, type LocatedPhrase, type ReadResult,
} from './problems.js';

const COMMA = 0x2c;
const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const TAB = 0x09;

const REQUIRED_COLUMNS = ['phrase', 'category', 'severity'] as const;
const KNOWN_COLUMNS = new Set(['phrase', 'category', 'severity', 'embedded', 'exclusions', 'languages']);
const DIGITS = /^[0-9]+$/;
/** Separator inside the `exclusions` and `languages` cells. */
const LIST_SEPARATOR = '|';

const EMBEDDED_VALUES: ReadonlyMap<string, boolean> = new Map([
  ['', false], ['yes', true], ['no', false], ['true', true], ['false', false],
  ['1', true], ['0', false], ['y', true], ['n', false],
]);

/** One CSV record: its fields, the line it starts on, and whether its quoting was broken. */
export interface CsvRecord {
  fields: string[];
  /** Line the record starts on, and the line it ends on (differs when a quoted field has newlines). */
  line: number;
  endLine: number;
  broken: boolean;
}

/**
 * Reads CSV text one record at a time (RFC 4180), so a large file never holds every record at
 * once. Reports an unclosed quote (at the line where the record starts) and text after a closing
 * quote; such records come back `broken`. A bare quote inside an unquoted field is kept as a
 * literal character, as Excel reads it.
 */
export class CsvRecordReader {
  private i = 0;
  private line = 1;

  constructor(private readonly text: string, private readonly problems: DictionaryProblem[]) {}

  /** The next record, or undefined at the end of the text. */
  next(): CsvRecord | undefined {
    const text = this.text;
    const n = text.length;
    let i = this.i;
    let line = this.line;
    if (i >= n) return undefined;
    const record: CsvRecord = { fields: [], line, endLine: line, broken: false };
    for (;;) {
      let value: string;
      if (text.charCodeAt(i) === QUOTE) {
        i++;
        let segStart = i;
        let parts = '';
        let closed = false;
        while (i < n) {
          const c = text.charCodeAt(i);
          if (c === QUOTE) {
            if (text.charCodeAt(i + 1) === QUOTE) {
              parts += text.slice(segStart, i + 1);
              i += 2;
              segStart = i;
              continue;
            }
            closed = true;
            break;
          }
          if (c === LF) line++;
          else if (c === CR && text.charCodeAt(i + 1) !== LF) line++;
          i++;
        }
        value = parts + text.slice(segStart, i);
        if (!closed) {
          this.problems.push({ line: record.line, level: 'error', code: 'csv.quote_unclosed', reason: 'quoted field is never closed (a missing " swallows the rest of the file)' });
          record.broken = true;
          record.endLine = line;
          record.fields.push(value);
          this.i = n;
          this.line = line;
          return record;
        }
        i++;
        while (i < n && (text.charCodeAt(i) === SPACE || text.charCodeAt(i) === TAB)) i++;
        if (i < n && text.charCodeAt(i) !== COMMA && text.charCodeAt(i) !== CR && text.charCodeAt(i) !== LF) {
          const start = i;
          while (i < n && text.charCodeAt(i) !== COMMA && text.charCodeAt(i) !== CR && text.charCodeAt(i) !== LF) i++;
          if (!record.broken) {
            this.problems.push({ line: record.line, level: 'error', code: 'csv.quote_stray', reason: `text ${quote(text.slice(start, i))} after a closing quote; a quote inside a quoted field must be doubled ("")` });
          }
          record.broken = true;
          value += text.slice(start, i);
        }
      } else {
        const start = i;
        while (i < n) {
          const c = text.charCodeAt(i);
          if (c === COMMA || c === CR || c === LF) break;
          i++;
        }
        value = text.slice(start, i);
      }
      record.fields.push(value);
      if (i < n && text.charCodeAt(i) === COMMA) {
        i++;
        continue;
      }
      record.endLine = line;
      if (i < n) {
        if (text.charCodeAt(i) === CR && text.charCodeAt(i + 1) === LF) i += 2;
        else i++;
        line++;
      }
      break;
    }
    this.i = i;
    this.line = line;
    return record;
  }
}

/** Every record of `text` (see CsvRecordReader). */
export function splitCsvRecords(text: string, problems: DictionaryProblem[]): CsvRecord[] {
  const reader = new CsvRecordReader(text, problems);
  const records: CsvRecord[] = [];
  for (let record = reader.next(); record !== undefined; record = reader.next()) records.push(record);
  return records;
}

function isBlankRecord(fields: readonly string[]): boolean {
  for (const f of fields) if (f.trim().length !== 0) return false;
  return true;
}

function splitList(cell: string | undefined): string[] {
  if (cell === undefined || cell.trim().length === 0) return [];
  return cell.split(LIST_SEPARATOR);
}

function fieldCountProblem(line: number, count: number, width: number): DictionaryProblem {
  return { line, level: 'error', code: 'csv.field_count', reason: `row has ${count} fields but the header has ${width}; a phrase containing a comma must be in double quotes` };
}

function recordSpansBadLine(record: CsvRecord, badLines: ReadonlySet<number>): boolean {
  if (badLines.size === 0) return false;
  for (let l = record.line; l <= record.endLine; l++) if (badLines.has(l)) return true;
  return false;
}

/**
 * Reads a CSV dictionary. `name` becomes the dictionary name (check.ts passes the file's base name).
 * Never throws on file content: every problem comes back in `problems` with its line.
 */
export function parseCsvDictionary(source: Uint8Array | string, name: string): ReadResult {
  const problems: DictionaryProblem[] = [];
  const entries: LocatedPhrase[] = [];
  const decoded = decodeDictionaryBytes(source, problems);
  if (decoded === undefined) return { name, entries, problems };
  const reader = new CsvRecordReader(decoded.text, problems);

  let header = reader.next();
  while (header !== undefined && !header.broken && isBlankRecord(header.fields)) header = reader.next();
  if (header === undefined) {
    problems.push({ line: 1, level: 'error', code: 'file.empty', reason: 'file is empty; the first line must be the header phrase,category,severity,embedded' });
    return { name, entries, problems };
  }

  const headerLine = header.line;
  const headerFields = header.fields;
  const columns = new Map<string, number>();
  let headerOk = !header.broken;
  headerFields.forEach((raw, index) => {
    const col = raw.trim().toLowerCase();
    if (!KNOWN_COLUMNS.has(col)) {
      problems.push({ line: headerLine, level: 'warning', code: 'csv.column_unknown', reason: `column ${quote(raw.trim())} is not one Hark reads; it is ignored` });
      return;
    }
    if (columns.has(col)) {
      problems.push({ line: headerLine, level: 'error', code: 'csv.header', reason: `column ${quote(col)} appears twice in the header` });
      headerOk = false;
      return;
    }
    columns.set(col, index);
  });
  for (const required of REQUIRED_COLUMNS) {
    if (!columns.has(required)) {
      const found = headerFields.map((f) => quote(f.trim())).join(', ');
      problems.push({ line: headerLine, level: 'error', code: 'csv.header', reason: `header has no ${quote(required)} column (found ${found}); the first line must be phrase,category,severity,embedded` });
      headerOk = false;
    }
  }
  if (!headerOk) return { name, entries, problems };

  const iPhrase = columns.get('phrase') as number;
  const iCategory = columns.get('category') as number;
  const iSeverity = columns.get('severity') as number;
  const iEmbedded = columns.get('embedded');
  const iExclusions = columns.get('exclusions');
  const iLanguages = columns.get('languages');
  const width = headerFields.length;

  let rows = 0;
  for (let record = reader.next(); record !== undefined; record = reader.next()) {
    if (record.broken) continue;
    if (recordSpansBadLine(record, decoded.badLines)) continue;
    const fields = record.fields;
    if (isBlankRecord(fields)) continue;
    rows++;
    const line = record.line;

    // Excel pads every row with empty cells to the widest row, so empty extra cells are normal; but
    // when such a row is also invalid, an unquoted comma shifting the columns is the likely cause,
    // and that one problem replaces the row's others (see below).
    if (fields.length > width && !isBlankRecord(fields.slice(width))) {
      problems.push(fieldCountProblem(line, fields.length, width));
      continue;
    }
    const firstProblem = problems.length;
    let errors = 0;
    const severityText = (fields[iSeverity] ?? '').trim();
    let severity = 0;
    if (severityText.length === 0) {
      problems.push({ line, level: 'error', code: 'severity.missing', reason: 'severity is missing' });
      errors++;
    } else if (!DIGITS.test(severityText)) {
      problems.push({ line, level: 'error', code: 'severity.not_integer', reason: `severity ${quote(severityText)} is not an integer 1-5` });
      errors++;
    } else {
      severity = Number(severityText);
      if (severity < 1 || severity > 5) {
        problems.push({ line, level: 'error', code: 'severity.range', reason: `severity ${quote(severityText)} is not 1-5` });
        errors++;
      }
    }

    const embeddedText = iEmbedded === undefined ? '' : (fields[iEmbedded] ?? '').trim();
    let embedded = EMBEDDED_VALUES.get(embeddedText.toLowerCase());
    if (embedded === undefined) {
      problems.push({ line, level: 'error', code: 'embedded.unknown', reason: `embedded ${quote(embeddedText)} is not one of yes, no, true, false, y, n, 1, 0 or blank` });
      errors++;
      embedded = false;
    }

    const checked = checkRowTexts({
      phrase: fields[iPhrase] ?? '',
      category: fields[iCategory] ?? '',
      exclusions: splitList(iExclusions === undefined ? undefined : fields[iExclusions]),
      languages: splitList(iLanguages === undefined ? undefined : fields[iLanguages]),
      embedded,
    }, line, problems);
    errors += checked.errors;
    if (errors > 0 && fields.length > width) {
      problems.length = firstProblem;
      problems.push(fieldCountProblem(line, fields.length, width));
      continue;
    }
    if (errors > 0) continue;

    if (entries.length >= MAX_PHRASES) {
      problems.push({ line, level: 'error', code: 'dictionary.too_many', reason: `more than ${MAX_PHRASES} phrases; rows from this line on are not loaded` });
      break;
    }
    const phrase: Phrase = {
      phrase: checked.clean.phrase,
      category: checked.clean.category,
      severity: severity as Phrase['severity'],
      embedded,
      exclusions: checked.clean.exclusions,
      languages: checked.clean.languages,
    };
    entries.push({ phrase, line, key: checked.clean.key });
  }

  if (rows === 0 && problems.every((p) => p.level !== 'error')) {
    problems.push({ line: headerLine, level: 'error', code: 'file.empty', reason: 'dictionary has a header but no phrases' });
  }
  return { name, entries, problems };
}
