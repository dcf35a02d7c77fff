/**
 * What every input format becomes: users, titles and watch events in the API's terms, each with the file
 * and line it came from, so the importer can refuse bad input by name whatever the format.
 */
import type { LoadProgress } from '../bulk-load.js';

/** A user as the files describe it. Undefined fields are absent: kept on update, their default on create. */
export interface ImportUser {
  id: number;
  /** null: unknown (clears a stored age). */
  age?: number | null;
  country?: string | null;
  subscription_type?: string;
  createdAtMs?: number;
  line: number;
}

/** A title. `genres` has at least one, first = the title's `genre`. */
export interface ImportTitle {
  id: number;
  title: string;
  genres: string[];
  releaseYear?: number;
  createdAtMs?: number;
  /** Absent: computed from the watch counts after the import. */
  popularity?: number;
  hidden?: boolean;
  subscription_tier?: string;
  countries?: string[];
  line: number;
}

export interface ImportEvent {
  userId: number;
  contentId: number;
  watchedAtMs: number;
  line: number;
}

/** One input file's rows, read in batches. */
export interface ImportFile<Row> {
  /** The path, as the error messages name it. */
  path: string;
  rows(progress: (p: LoadProgress) => void): AsyncIterable<Row[]>;
}

export interface ImportSource {
  /** What was detected, for the log line ("MovieLens 100K"). */
  layout: string;
  /** Absent: the users are the distinct users of the events (with every field at its default). */
  users?: ImportFile<ImportUser>;
  titles: ImportFile<ImportTitle>;
  events: ImportFile<ImportEvent>;
}

/** Bad input: names the file and, when it is about a line, the line. Nothing of the import is kept. */
export class ImportInputError extends Error {
  readonly code = 'import_invalid_input';
  readonly file: string;
  readonly line: number | undefined;
  constructor(file: string, line: number | undefined, reason: string) {
    super(line === undefined ? `${file}: ${reason}` : `${file} line ${line}: ${reason}`);
    this.name = 'ImportInputError';
    this.file = file;
    this.line = line;
  }
}

/** The API's genre form (lower-case letters, digits, _ and -, at most 32): "Sci-Fi" → "sci-fi", "Children's" → "childrens". */
export function genreSlug(name: string): string {
  return name
    .toLowerCase()
    .replace(/['’]/g, '')
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 32)
    .replace(/-+$/, '');
}

/** Genre used when a title lists none. */
export const NO_GENRE = 'unknown';

/** Slugs of `names`, distinct, in order; [NO_GENRE] when none is left. */
export function genreList(names: Iterable<string>): string[] {
  const out: string[] = [];
  for (const name of names) {
    const slug = genreSlug(name);
    if (slug !== '' && !out.includes(slug)) out.push(slug);
  }
  return out.length > 0 ? out : [NO_GENRE];
}

/** A positive integer id (as the API's), or undefined. */
export function parseId(text: string): number | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && Number.isSafeInteger(n) ? n : undefined;
}
