/**
 * The MovieLens layouts people download from GroupLens, detected from the files present in the folder:
 * 100K (u.data, u.item, u.user, u.genre), 1M (ratings.dat, movies.dat, users.dat; `::`-separated) and the
 * current CSV releases (ratings.csv, movies.csv; no users file). 100K and 1M are Latin-1, CSV is UTF-8.
 * Each rating is a watch event at its timestamp (the rating value is checked, then dropped).
 */
import path from 'node:path';
import { AGE_MAX } from '../../domain/constants.js';
import type { LoadProgress } from '../bulk-load.js';
import { csvRecords, isFile, lines, requireFile, type Line } from './text-files.js';
import {
  genreList,
  type ImportEvent,
  type ImportFile,
  ImportInputError,
  type ImportSource,
  type ImportTitle,
  type ImportUser,
  parseId,
} from './source.js';

interface Layout {
  name: string;
  /** The file whose presence selects the layout. */
  ratings: string;
  companions: string[];
  build(dir: string): Promise<ImportSource>;
}

const LAYOUTS: Layout[] = [
  { name: 'MovieLens 100K', ratings: 'u.data', companions: ['u.item', 'u.user', 'u.genre'], build: ml100k },
  { name: 'MovieLens 1M', ratings: 'ratings.dat', companions: ['movies.dat', 'users.dat'], build: ml1m },
  { name: 'MovieLens CSV', ratings: 'ratings.csv', companions: ['movies.csv'], build: mlCsv },
];

/** The layout in `dir`; throws when none (or more than one) is there, or one of its files is missing. */
export async function movielensSource(dir: string): Promise<ImportSource> {
  const present: Layout[] = [];
  for (const layout of LAYOUTS) if (await isFile(path.join(dir, layout.ratings))) present.push(layout);
  if (present.length === 0) {
    throw new ImportInputError(dir, undefined,
      `no MovieLens ratings file found (${LAYOUTS.map((l) => l.ratings).join(', ')}): file not found`);
  }
  if (present.length > 1) {
    throw new ImportInputError(dir, undefined,
      `more than one MovieLens layout (${present.map((l) => l.ratings).join(', ')}): import them from separate folders`);
  }
  const layout = present[0]!;
  for (const file of layout.companions) await requireFile(path.join(dir, file));
  return layout.build(dir);
}

const fail = (file: string, line: number, reason: string): never => {
  throw new ImportInputError(file, line, reason);
};

function fieldsOf(file: string, l: Line, separator: string, count: number): string[] {
  const fields = l.text.split(separator);
  if (fields.length !== count) {
    fail(file, l.line, `expected ${count} fields separated by "${separator === '\t' ? '\\t' : separator}", found ${fields.length}`);
  }
  return fields;
}

function id(file: string, line: number, name: string, text: string): number {
  return parseId(text.trim()) ?? fail(file, line, `${name} ${JSON.stringify(text)} is not a positive integer`);
}

/** A rating as a watch event: ids, a numeric rating (dropped), a Unix time in seconds, not in the future. */
function event(file: string, line: number, [user, movie, rating, timestamp]: string[]): ImportEvent {
  const userId = id(file, line, 'user id', user!);
  const contentId = id(file, line, 'movie id', movie!);
  if (!/^\d+(\.\d+)?$/.test(rating!.trim())) fail(file, line, `rating ${JSON.stringify(rating)} is not a number`);
  const seconds = timestamp!.trim();
  if (!/^\d{1,11}$/.test(seconds)) fail(file, line, `timestamp ${JSON.stringify(timestamp)} is not a Unix time in seconds`);
  const watchedAtMs = Number(seconds) * 1000;
  if (watchedAtMs > Date.now()) fail(file, line, `timestamp ${seconds} is in the future`);
  return { userId, contentId, watchedAtMs, line };
}

/** "Toy Story (1995)", "Babylon 5 (1994-1998)": the (first) year at the end of a title. */
export function yearInTitle(title: string): number | undefined {
  const m = /\((\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$/.exec(title);
  return m ? Number(m[1]) : undefined;
}

function title(file: string, line: number, movieId: number, text: string, genres: string[], releaseMs?: number): ImportTitle {
  const name = text.trim();
  if (name === '') fail(file, line, `movie ${movieId} has an empty title`);
  const year = releaseMs !== undefined ? new Date(releaseMs).getUTCFullYear() : yearInTitle(name);
  const row: ImportTitle = { id: movieId, title: name, genres, line };
  if (year !== undefined) {
    row.releaseYear = year;
    row.createdAtMs = releaseMs ?? Date.UTC(year, 0, 1);
  }
  return row;
}

function age(file: string, line: number, text: string): number {
  const n = Number(text.trim());
  if (!/^\d{1,3}$/.test(text.trim()) || n > AGE_MAX) fail(file, line, `age ${JSON.stringify(text)} is not an integer from 0 to ${AGE_MAX}`);
  return n;
}

/** A file of separated lines, each turned into one row. */
function lineFile<Row>(file: string, encoding: 'utf8' | 'latin1', toRow: (l: Line) => Row): ImportFile<Row> {
  return {
    path: file,
    async *rows(progress: (p: LoadProgress) => void) {
      for await (const batch of lines(file, encoding, progress)) yield batch.map(toRow);
    },
  };
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** 100K's release date, "01-Jan-1995" (empty: unknown). */
function releaseDate(file: string, line: number, text: string): number | undefined {
  if (text.trim() === '') return undefined;
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text.trim());
  const month = m ? MONTHS.indexOf(m[2]!.toLowerCase()) : -1;
  if (!m || month < 0) return fail(file, line, `release date ${JSON.stringify(text)} is not like 01-Jan-1995`);
  return Date.UTC(Number(m[3]), month, Number(m[1]));
}

async function ml100k(dir: string): Promise<ImportSource> {
  const genreFile = path.join(dir, 'u.genre');
  // u.genre: "name|index", the names of u.item's flag columns in index order.
  const names: string[] = [];
  for await (const batch of lines(genreFile, 'latin1', () => {})) {
    for (const l of batch) {
      const [name, index] = fieldsOf(genreFile, l, '|', 2);
      if (!/^\d+$/.test(index!) || Number(index) !== names.length) fail(genreFile, l.line, `expected genre index ${names.length}, found ${JSON.stringify(index)}`);
      names.push(name!);
    }
  }
  if (names.length === 0) throw new ImportInputError(genreFile, undefined, 'no genres');

  const items = path.join(dir, 'u.item');
  const users = path.join(dir, 'u.user');
  const data = path.join(dir, 'u.data');
  return {
    layout: 'MovieLens 100K',
    // movie id | title | release date | video release date | IMDb URL | one 0/1 flag per genre
    titles: lineFile(items, 'latin1', (l) => {
      const f = fieldsOf(items, l, '|', 5 + names.length);
      const movieId = id(items, l.line, 'movie id', f[0]!);
      const flags = f.slice(5);
      const bad = flags.findIndex((x) => x !== '0' && x !== '1');
      if (bad >= 0) fail(items, l.line, `genre flag ${names[bad]} is ${JSON.stringify(flags[bad])}, not 0 or 1`);
      const genres = genreList(names.filter((_, i) => flags[i] === '1'));
      return title(items, l.line, movieId, f[1]!, genres, releaseDate(items, l.line, f[2]!));
    }),
    // user id | age | gender | occupation | zip code
    users: lineFile(users, 'latin1', (l): ImportUser => {
      const f = fieldsOf(users, l, '|', 5);
      return { id: id(users, l.line, 'user id', f[0]!), age: age(users, l.line, f[1]!), line: l.line };
    }),
    // user id \t item id \t rating \t timestamp
    events: lineFile(data, 'latin1', (l) => event(data, l.line, fieldsOf(data, l, '\t', 4))),
  };
}

async function ml1m(dir: string): Promise<ImportSource> {
  const movies = path.join(dir, 'movies.dat');
  const users = path.join(dir, 'users.dat');
  const ratings = path.join(dir, 'ratings.dat');
  return {
    layout: 'MovieLens 1M',
    // MovieID::Title::Genres (pipe-separated)
    titles: lineFile(movies, 'latin1', (l) => {
      const f = fieldsOf(movies, l, '::', 3);
      const movieId = id(movies, l.line, 'movie id', f[0]!);
      return title(movies, l.line, movieId, f[1]!, genreList(f[2]!.split('|')));
    }),
    // UserID::Gender::Age::Occupation::Zip-code; Age is the lower bound of a range (1 = under 18)
    users: lineFile(users, 'latin1', (l): ImportUser => {
      const f = fieldsOf(users, l, '::', 5);
      return { id: id(users, l.line, 'user id', f[0]!), age: age(users, l.line, f[2]!), line: l.line };
    }),
    // UserID::MovieID::Rating::Timestamp
    events: lineFile(ratings, 'latin1', (l) => event(ratings, l.line, fieldsOf(ratings, l, '::', 4))),
  };
}

/** A CSV file whose header names (at least) `columns`; rows get the fields in that order. */
function csvFile<Row>(file: string, columns: string[], toRow: (fields: string[], line: number) => Row): ImportFile<Row> {
  return {
    path: file,
    async *rows(progress: (p: LoadProgress) => void) {
      let order: number[] | undefined;
      let header = 0;
      for await (const batch of csvRecords(file, progress)) {
        const out: Row[] = [];
        for (const r of batch) {
          if (order === undefined) {
            order = columns.map((c) => r.fields.indexOf(c));
            header = r.fields.length;
            if (order.includes(-1)) {
              fail(file, r.line, `header ${JSON.stringify(r.fields.join(','))} lacks ${columns.filter((_, i) => order![i] === -1).join(', ')}`);
            }
            continue;
          }
          if (r.fields.length !== header) fail(file, r.line, `expected ${header} fields (as the header), found ${r.fields.length}`);
          out.push(toRow(order.map((i) => r.fields[i]!), r.line));
        }
        if (out.length > 0) yield out;
      }
    },
  };
}

async function mlCsv(dir: string): Promise<ImportSource> {
  const movies = path.join(dir, 'movies.csv');
  const ratings = path.join(dir, 'ratings.csv');
  return {
    layout: 'MovieLens CSV',
    titles: csvFile(movies, ['movieId', 'title', 'genres'], ([movie, name, genres], line) => {
      const movieId = id(movies, line, 'movieId', movie!);
      // "(no genres listed)" is the release's word for none.
      const listed = genres === '(no genres listed)' ? [] : genres!.split('|');
      return title(movies, line, movieId, name!, genreList(listed));
    }),
    events: csvFile(ratings, ['userId', 'movieId', 'rating', 'timestamp'], (fields, line) => event(ratings, line, fields)),
  };
}
