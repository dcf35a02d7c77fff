/**
 * docs/configuration.md is the operator's reference: its variable table must be exactly what
 * `npm run docs:config` generates from src/config.ts's VARIABLES (every variable, its default, its doc).
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { VARIABLES } from '../../src/config.js';
// @ts-expect-error a plain .mjs script without type declarations
import { configTable, DOC, generatedPart } from '../../scripts/config-doc.mjs';

const table = generatedPart(readFileSync(DOC, 'utf8')) as string;

it('docs/configuration.md holds the table generated from VARIABLES (else run npm run docs:config)', () => {
  expect(table).toBe(configTable(VARIABLES));
});

it.each(Object.keys(VARIABLES))('lists %s once', (name) => {
  expect(table.split('\n').filter((row) => row.startsWith(`| \`${name}\` |`))).toHaveLength(1);
});

it('shows machine-dependent defaults in words, not this machine\'s value', () => {
  expect(table).toContain('| `WORKERS` | available cores |');
});
