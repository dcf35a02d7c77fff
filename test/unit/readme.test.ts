/** The README's configuration table is the operator's reference: it must list every variable read. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { VARIABLES } from '../../src/config.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

it.each(Object.entries(VARIABLES))('documents %s with its default', (name, spec) => {
  const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
  expect(row, `README configuration row for ${name}`).toBeDefined();
  if (name === 'WORKERS') expect(row).toContain('available cores');
  else if (spec.default !== undefined) expect(row).toContain(`\`${spec.default}\``);
  else expect(row).toContain('unset');
});
