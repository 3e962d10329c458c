// The plain-text index of the original datastore, which pollers read: fields separated and
// ended by "|", padded with spaces, a header line starting with "#", times as
// YYYY-MM-DDTHH:MM:SSZ. Three levels: the root (products), a product (filesets, optionally only
// those after a given one) and a fileset (files with bytes and md5).
import type { FileInfo, FilesetInfo, ProductInfo } from './types.ts';

/** An ISO-8601 time as the index shows it: whole seconds, UTC. */
export function indexTime(iso: string): string {
  return `${iso.slice(0, 19)}Z`;
}

const pad = (value: string, width: number): string => value.padEnd(width);

/** The root index: one line per product (name, most recent fileset or "none", its time, type, description). */
export function formatRootIndex(products: readonly ProductInfo[]): string {
  const line = (cells: readonly string[]) => `${pad(cells[0], 13)}|${pad(cells[1], 12)}|${pad(cells[2], 20)}|${pad(cells[3], 9)}|${pad(cells[4], 32)}|\n`;
  let out = line(['# productID', 'Most recent', 'Time registered', 'type', 'Description']);
  for (const p of products) out += line([p.name, p.lastFileset ?? 'none', indexTime(p.lastUpdate), p.type, p.description]);
  return out;
}

/** A product's index: one line per fileset (name, registration time, type), columns as wide as their widest value. */
export function formatProductIndex(filesets: readonly Pick<FilesetInfo, 'name' | 'registered' | 'type'>[]): string {
  const head = ['# filesetID', 'time registered', 'type'];
  const widths = head.map((h) => h.length);
  const rows: string[][] = filesets.map((f) => [f.name, indexTime(f.registered), f.type]);
  for (const row of rows) for (let c = 0; c < 3; c++) widths[c] = Math.max(widths[c], row[c].length);
  const line = (cells: readonly string[]) => `${cells.map((v, c) => `${pad(v, widths[c])}|`).join('')}\n`;
  let out = line(head);
  for (const row of rows) out += line(row);
  return out;
}

/** A fileset's index: one line per file (name, bytes, md5, type). */
export function formatFilesetIndex(files: readonly FileInfo[]): string {
  const line = (cells: readonly string[]) => `${pad(cells[0], 18)}|${pad(cells[1], 8)}|${pad(cells[2], 32)}|${pad(cells[3], 12)}|\n`;
  let out = line(['# fileID', 'bytes', 'md5sum', 'type']);
  for (const f of files) out += line([f.name, String(f.bytes), f.md5, f.type]);
  return out;
}

function fields(text: string): string[][] {
  const rows: string[][] = [];
  for (const line of text.split('\n')) {
    if (/^\s*$/.test(line) || /^\s*#/.test(line)) continue;
    const cells = line.split('|').map((c) => c.trim());
    if (cells.at(-1) === '') cells.pop();
    rows.push(cells);
  }
  return rows;
}

/** Reads a product index back (what a poller of the text index does). */
export function parseProductIndex(text: string): { name: string; registered: string; type: string }[] {
  return fields(text).filter((c) => c.length >= 3).map(([name, registered, type]) => ({ name, registered, type }));
}

/** Reads a fileset index back. */
export function parseFilesetIndex(text: string): FileInfo[] {
  return fields(text).filter((c) => c.length >= 4).map(([name, bytes, md5, type]) => ({ name, bytes: Number(bytes), md5, type }));
}

/** Reads the root index back. */
export function parseRootIndex(text: string): { name: string; lastFileset: string | null; lastUpdate: string; type: string; description: string }[] {
  return fields(text).filter((c) => c.length >= 5).map(([name, last, lastUpdate, type, description]) => ({
    name, lastFileset: last === 'none' ? null : last, lastUpdate, type, description,
  }));
}
