// Helpers shared by this folder's tests: temporary directories and the external checkers.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The interpreter that has astropy (the one first on PATH may not). */
export const PYTHON = '/usr/bin/python3';

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ipp-compress-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a Python script with astropy's interpreter; returns its standard output. */
export async function python(script: string, args: readonly string[] = []): Promise<string> {
  const { stdout } = await run(PYTHON, ['-c', script, ...args], { maxBuffer: 64 << 20 });
  return stdout;
}

/** Runs a command; resolves with its exit code and output instead of throwing on failure. */
export async function tool(cmd: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(cmd, [...args], { maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(error) };
  }
}
