/**
 * Agent tokens: read from a token file, or made on first start and kept in the data folder with owner-only
 * permissions. A token file holds one `TENANT TOKEN` pair a line, or a bare `TOKEN` for the default tenant
 * (so a file with a single token stays valid). Tokens are compared in constant time and never logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The tenant of a bare token, and of every run made before tenants existed. */
export const DEFAULT_TENANT = 'default';
const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Token to tenant, as a token file lists them. */
export type TokenTable = ReadonlyMap<string, string>;

function tokenLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

/** A client's token: the first line of a token file (its last field, should the line name a tenant too). */
export async function readTokenFile(file: string): Promise<string> {
  const line = tokenLines(await readFile(file, 'utf8'))[0];
  if (!line) throw new Error(`the token file ${file} holds no token`);
  return line.split(/\s+/).pop()!;
}

/** Parses an agent's token file: `TENANT TOKEN` or a bare `TOKEN` (default tenant) a line. Errors name the line, never the token. */
export function parseTokenTable(text: string, file = 'the token file'): Map<string, string> {
  const table = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    if (fields.length > 2) throw new Error(`${file} line ${i + 1}: expected \`TENANT TOKEN\` or a bare token`);
    const [tenant, token] = fields.length === 2 ? fields : [DEFAULT_TENANT, fields[0]];
    if (!TENANT_NAME.test(tenant)) throw new Error(`${file} line ${i + 1}: tenant names are letters, digits, \`_.-\`, at most 64`);
    if (table.has(token)) throw new Error(`${file} line ${i + 1}: this token is listed twice`);
    table.set(token, tenant);
  });
  if (table.size === 0) throw new Error(`${file} holds no token`);
  return table;
}

export async function readTokenTable(file: string): Promise<Map<string, string>> {
  return parseTokenTable(await readFile(file, 'utf8'), `the token file ${file}`);
}

/** The tenant whose token was presented, or undefined. Every entry is compared, so the time says nothing. */
export function tenantOf(presented: string | undefined, table: TokenTable): string | undefined {
  let found: string | undefined;
  for (const [token, tenant] of table) if (tokenMatches(presented ?? '', token) && presented !== undefined) found = tenant;
  return found;
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
