/** Does a Docker Engine answer? One `GET /_ping` on the socket the local agent would use. */
import * as http from 'node:http';

export interface DockerCheck {
  ok: boolean;
  where: string;
  error?: string;
}

export function pingDocker(timeoutMs = 3000): Promise<DockerCheck> {
  const host = process.env.DOCKER_HOST;
  let opts: http.RequestOptions;
  let where: string;
  if (host && /^tcp:\/\//.test(host)) {
    const u = new URL(host.replace(/^tcp:/, 'http:'));
    opts = { host: u.hostname, port: Number(u.port || 2375) };
    where = host;
  } else if (host && !host.startsWith('unix://')) {
    // ssh:// and the like: let the agent try, it knows more ways than we do.
    return Promise.resolve({ ok: true, where: host });
  } else {
    const socketPath = host ? host.slice('unix://'.length) : '/var/run/docker.sock';
    opts = { socketPath };
    where = socketPath;
  }
  return new Promise((resolve) => {
    const req = http.get({ ...opts, path: '/_ping', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? { ok: true, where } : { ok: false, where, error: `HTTP ${res.statusCode}` });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, where, error: err.message }));
  });
}
