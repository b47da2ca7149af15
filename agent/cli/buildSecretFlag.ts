/**
 * `--secret id=ID[,src=FILE|,env=VAR]`, Docker's syntax (`type=file|env` is accepted too): the value is read
 * here, on the client, and travels with the run request to be held in memory for the build only. `id=ID`
 * alone takes the environment variable ID, as buildx does when no source is named.
 */
import { readFile } from 'node:fs/promises';

const ID = /^[A-Za-z0-9._-]{1,128}$/;

export async function readBuildSecret(flag: string, env: NodeJS.ProcessEnv = process.env): Promise<[string, Buffer]> {
  const fields = new Map<string, string>();
  for (const part of flag.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`--secret ${flag}: each part is key=value (id=…, src=… or env=…)`);
    const key = part.slice(0, eq).trim().toLowerCase();
    if (!['id', 'src', 'source', 'env', 'type'].includes(key)) throw new Error(`--secret: unknown key ${JSON.stringify(key)} (id, src, env, type)`);
    fields.set(key === 'source' ? 'src' : key, part.slice(eq + 1));
  }
  const id = fields.get('id');
  if (!id || !ID.test(id)) throw new Error(`--secret ${flag}: give id=NAME (letters, digits, . _ -)`);
  const type = fields.get('type');
  if (type && type !== 'file' && type !== 'env') throw new Error(`--secret ${flag}: type is file or env`);
  const src = fields.get('src');
  if (src !== undefined && fields.has('env')) throw new Error(`--secret id=${id}: src and env cannot go together`);
  if (src !== undefined || type === 'file') {
    const file = src ?? id;
    // The error names the file, never its content.
    const value = await readFile(file).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`--secret id=${id}: cannot read ${file} (${err.code ?? err.message})`);
    });
    return [id, value];
  }
  const name = fields.get('env') ?? id;
  const value = env[name];
  if (value === undefined) throw new Error(`--secret id=${id}: the environment variable ${name} is not set`);
  return [id, Buffer.from(value)];
}
