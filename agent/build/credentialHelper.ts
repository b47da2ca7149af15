/**
 * Docker credential helpers (`docker-credential-NAME`, named by `credsStore` or `credHelpers` in a Docker config):
 * where `docker login` keeps passwords on Docker Desktop (desktop, osxkeychain, wincred) and with pass or
 * secretservice. The protocol is the docker CLI's: `get` with the server address on stdin answers
 * `{"ServerURL","Username","Secret"}` (Username `<token>`: Secret is an identity token); `list` answers
 * `{"URL": "username"}`. Their output is parsed here and nowhere printed.
 */
import { execFile } from 'node:child_process';
import type { RegistryCredentials } from './registryAuth';

/** A helper that does not answer within this is given up on: the pull then goes anonymous. */
const TIMEOUT_MS = 10_000;

function call(helper: string, verb: 'get' | 'list', input: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    // A helper name from the config is a program suffix, never a path or an option.
    if (!/^[A-Za-z0-9._-]+$/.test(helper)) return resolve(undefined);
    const child = execFile(`docker-credential-${helper}`, [verb], { timeout: TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, stdout) => {
      // "credentials not found" is an exit status of 1: no credentials, as much as a missing helper is.
      resolve(err ? undefined : stdout);
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}

/** The credentials a helper keeps for `server`, or undefined (none, no such helper, or a broken answer). */
export async function helperGet(helper: string, server: string): Promise<RegistryCredentials | undefined> {
  const out = await call(helper, 'get', server);
  if (!out) return undefined;
  try {
    const { Username, Secret } = JSON.parse(out) as { Username?: unknown; Secret?: unknown };
    if (typeof Secret !== 'string' || Secret === '') return undefined;
    if (Username === '<token>') return { username: '', secret: Secret };
    return typeof Username === 'string' ? { username: Username, secret: Secret } : undefined;
  } catch {
    return undefined;
  }
}

/** The server addresses a helper keeps credentials for. */
export async function helperList(helper: string): Promise<string[]> {
  const out = await call(helper, 'list', '');
  if (!out) return [];
  try {
    const list = JSON.parse(out) as unknown;
    return list && typeof list === 'object' ? Object.keys(list) : [];
  } catch {
    return [];
  }
}
