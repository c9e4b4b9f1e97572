import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

/** A JSON document on disk replaced atomically (write beside, then rename): a kill never leaves half a file. */
export function readJson<T>(file: string, fallback: () => T): T {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : fallback();
}

export function writeJsonAtomically(file: string, value: unknown): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(value));
  renameSync(temporary, file);
}
