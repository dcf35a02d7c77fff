/**
 * Reading the input files: whole lines with their numbers, in batches; UTF-8 checked strictly (a wrong
 * encoding names its line instead of turning into U+FFFD) or Latin-1 (every byte is a character).
 * CSV follows RFC 4180 (quoted fields with commas, quotes and line breaks; csv-parse reads the quoted ones).
 */
import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { type LoadProgress, rate } from '../bulk-load.js';
import { ImportInputError } from './source.js';

export type Encoding = 'utf8' | 'latin1';

export interface Line {
  text: string;
  line: number;
}

const READ_BYTES = 1 << 20;
const NL = 0x0a;
const CR = 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Whether `file` exists as a regular file. */
export async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Throws the error of a missing input file. */
export async function requireFile(file: string): Promise<void> {
  if (!(await isFile(file))) throw new ImportInputError(file, undefined, 'file not found');
}

/**
 * The file's bytes cut at line ends: each yielded buffer holds whole lines (the last one possibly without
 * its newline), starting at line `first`. With utf8 each is checked, and a bad one names its line.
 */
async function* lineChunks(
  file: string,
  encoding: Encoding,
  progress: (p: LoadProgress) => void,
): AsyncGenerator<{ bytes: Buffer; first: number }> {
  await requireFile(file);
  const total = (await stat(file)).size;
  const name = path.basename(file);
  const started = Date.now();
  let read = 0;
  let line = 1;
  let carry: Buffer = Buffer.alloc(0);
  const emit = (bytes: Buffer): { bytes: Buffer; first: number } => {
    if (encoding === 'utf8' && !isUtf8(bytes)) {
      // Multi-byte UTF-8 sequences never contain a newline byte: checking line by line is exact.
      let at = 0;
      for (let n = line; at <= bytes.length; n++) {
        const end = bytes.indexOf(NL, at);
        if (!isUtf8(bytes.subarray(at, end === -1 ? bytes.length : end))) {
          throw new ImportInputError(file, n, 'not valid UTF-8 (the file must be UTF-8 encoded)');
        }
        if (end === -1) break;
        at = end + 1;
      }
    }
    const chunk = { bytes, first: line };
    for (let at = bytes.indexOf(NL); at !== -1; at = bytes.indexOf(NL, at + 1)) line++;
    return chunk;
  };
  for await (const data of createReadStream(file, { highWaterMark: READ_BYTES })) {
    const buf: Buffer = carry.length > 0 ? Buffer.concat([carry, data as Buffer]) : (data as Buffer);
    read += (data as Buffer).length;
    const last = buf.lastIndexOf(NL);
    if (last === -1) {
      carry = buf;
    } else {
      carry = buf.subarray(last + 1);
      yield emit(buf.subarray(0, last + 1));
    }
    progress(rate(name, Math.min(read, total - 1), total, started, 'bytes'));
  }
  if (carry.length > 0) yield emit(carry);
  progress(rate(name, total, total, started, 'bytes'));
}

/** The non-blank lines of `file` (LF or CR LF; a UTF-8 byte order mark is skipped), in batches. */
export async function* lines(file: string, encoding: Encoding, progress: (p: LoadProgress) => void): AsyncGenerator<Line[]> {
  for await (const { bytes, first } of lineChunks(file, encoding, progress)) {
    const batch: Line[] = [];
    let at = first === 1 && encoding === 'utf8' && bytes.subarray(0, 3).equals(BOM) ? 3 : 0;
    for (let n = first; at < bytes.length; n++) {
      let end = bytes.indexOf(NL, at);
      if (end === -1) end = bytes.length;
      const stop = end > at && bytes[end - 1] === CR ? end - 1 : end;
      if (stop > at) {
        const text = bytes.toString(encoding, at, stop);
        if (text.trim() !== '') batch.push({ text, line: n });
      }
      at = end + 1;
    }
    if (batch.length > 0) yield batch;
  }
}

/** A CSV record's fields and the line it starts on. */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/** Quote characters in `text`: a record continues on the next line while its count is odd (RFC 4180). */
function quotes(text: string): number {
  let n = 0;
  for (let at = text.indexOf('"'); at !== -1; at = text.indexOf('"', at + 1)) n++;
  return n;
}

/**
 * The records of a UTF-8 CSV file (RFC 4180), header included, in batches. A line without a quote is
 * split on commas (nearly every line of a ratings file: several times faster); a quoted record, over one
 * line or several, goes through csv-parse.
 */
export async function* csvRecords(file: string, progress: (p: LoadProgress) => void): AsyncGenerator<CsvRecord[]> {
  let pending: { text: string; line: number; quotes: number } | undefined;
  const quoted = (text: string, line: number): string[] => {
    try {
      const [fields] = parseCsv(text, { relax_column_count: true }) as string[][];
      return fields ?? [];
    } catch (err) {
      throw new ImportInputError(file, line, `malformed CSV: ${(err as Error).message.replace(/ (at|on) line \d+\.?$/, '')}`);
    }
  };
  for await (const batch of lines(file, 'utf8', progress)) {
    const out: CsvRecord[] = [];
    for (const l of batch) {
      if (pending) {
        pending.text += `\n${l.text}`;
        pending.quotes += quotes(l.text);
        if (pending.quotes % 2 === 0) {
          out.push({ fields: quoted(pending.text, pending.line), line: pending.line });
          pending = undefined;
        }
      } else if (!l.text.includes('"')) {
        out.push({ fields: l.text.split(','), line: l.line });
      } else {
        const n = quotes(l.text);
        if (n % 2 === 0) out.push({ fields: quoted(l.text, l.line), line: l.line });
        else pending = { text: l.text, line: l.line, quotes: n };
      }
    }
    if (out.length > 0) yield out;
  }
  if (pending) throw new ImportInputError(file, pending.line, 'malformed CSV: a quoted field is not closed');
}
