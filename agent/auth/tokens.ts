/**
 * Agent tokens: read from a token file (one token on its own line), or made on first start and kept in
 * the data folder with owner-only permissions. Tokens are compared in constant time and never logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Reads the first non-empty, non-comment line of a token file. */
export async function readTokenFile(file: string): Promise<string> {
  const text = await readFile(file, 'utf8');
  const token = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  if (!token) throw new Error(`the token file ${file} holds no token`);
  return token;
}

/** Returns the token in `file`, creating the file with a fresh token (mode 0600) when it does not exist. */
export async function loadOrCreateToken(file: string): Promise<{ token: string; created: boolean }> {
  try {
    return { token: await readTokenFile(file), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = generateToken();
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, token + '\n', { mode: 0o600, flag: 'wx' });
  return { token, created: true };
}

/** Hashing first gives equal-length buffers, so the comparison time does not depend on the guess. */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token from an `Authorization: Bearer <token>` header, if there is one. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
