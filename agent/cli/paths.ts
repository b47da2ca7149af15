import os from 'node:os';
import path from 'node:path';

/** Where an agent keeps its token, uploads and outputs unless told otherwise (XDG convention). */
export function defaultDataDir(): string {
  if (process.env.BYTENITE_DATA_DIR) return process.env.BYTENITE_DATA_DIR;
  const base = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'bytenite');
}
