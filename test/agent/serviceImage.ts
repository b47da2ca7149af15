/**
 * A build context for an HTTP service image made from nothing, since no registry can be reached: this
 * machine's own node binary with the libraries it links to, on `FROM scratch`, running
 * test/fixtures/service/server.js (with the `ws` package for its WebSocket echo).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, tmpDir } from './helpers';

export const SERVICE_PORT = 8000;

export function serviceContext(extraDockerfile = ''): string {
  const dir = tmpDir('bytenite-svc-');
  const node = realpathSync(process.execPath);
  const libs = execFileSync('ldd', [node], { encoding: 'utf8' })
    .split('\n').map((l) => /(\/\S+) \(0x/.exec(l)?.[1]).filter((p): p is string => Boolean(p));
  mkdirSync(path.join(dir, 'root', 'app', 'node_modules'), { recursive: true });
  for (const lib of libs) {
    const to = path.join(dir, 'root', lib);
    mkdirSync(path.dirname(to), { recursive: true });
    copyFileSync(realpathSync(lib), to);
  }
  mkdirSync(path.join(dir, 'root', 'usr', 'bin'), { recursive: true });
  copyFileSync(node, path.join(dir, 'root', 'usr', 'bin', 'node'));
  cpSync(path.join(ROOT, 'node_modules', 'ws'), path.join(dir, 'root', 'app', 'node_modules', 'ws'), { recursive: true });
  copyFileSync(path.join(ROOT, 'test', 'fixtures', 'service', 'server.js'), path.join(dir, 'root', 'app', 'server.js'));
  writeFileSync(path.join(dir, 'Dockerfile'),
    `FROM scratch\nCOPY root/ /\nENV PORT=${SERVICE_PORT}\nEXPOSE ${SERVICE_PORT}\n${extraDockerfile}CMD ["/usr/bin/node", "/app/server.js"]\n`);
  return dir;
}
