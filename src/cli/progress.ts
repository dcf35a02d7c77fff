/** Progress of a bulk load (npm run seed, npm run import) on stderr. */
import type { LoadProgress } from '../data/bulk-load.js';

export const fmt = new Intl.NumberFormat('en-US');
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A redrawn bar on a terminal; one line per finished table (or file, or step list) when stderr is a file or pipe. */
export function progressReporter(stream: NodeJS.WriteStream): { onProgress: (p: LoadProgress) => void; finish(): void } {
  let current: string | undefined;
  let lastDraw = 0;
  let lastLine = '';
  const unit = (p: LoadProgress): string => p.unit ?? (p.table === 'indexes' ? 'steps' : 'rows');

  const endTable = (p: LoadProgress): void => {
    const secs = p.rowsPerSec > 0 ? p.done / p.rowsPerSec : 0;
    const speed = unit(p) === 'steps' ? '' : `, ${compact.format(p.rowsPerSec)} ${unit(p)}/s`;
    const line = `${p.table.padEnd(18)} ${fmt.format(p.done)} ${unit(p)} in ${secs.toFixed(1)}s${speed}`;
    stream.write(stream.isTTY ? `\r${line.padEnd(lastLine.length)}\n` : `${line}\n`);
    lastLine = '';
  };

  return {
    onProgress(p) {
      current = p.table;
      if (p.done >= p.total) {
        endTable(p);
        current = undefined;
        return;
      }
      const now = Date.now();
      if (!stream.isTTY || now - lastDraw < 100) return;
      lastDraw = now;
      const ratio = p.total > 0 ? p.done / p.total : 1;
      const width = 24;
      const filled = Math.round(ratio * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      const line = `${p.table.padEnd(18)} ${bar} ${(ratio * 100).toFixed(0).padStart(3)}% ` +
        `${fmt.format(p.done)}/${fmt.format(p.total)}  ${compact.format(p.rowsPerSec)} ${unit(p)}/s  ` +
        `ETA ${duration(p.etaSec)}`;
      stream.write(`\r${line.padEnd(lastLine.length)}`);
      lastLine = line;
    },
    finish() {
      if (current !== undefined && stream.isTTY) stream.write('\n');
    },
  };
}
