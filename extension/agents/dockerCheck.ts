/**
 * Does the engine the local agent would use answer? It is found with the agent's own rules (a chosen
 * context, DOCKER_HOST, DOCKER_CONTEXT, the current context, the default socket), then asked `GET /_ping`,
 * so a missing engine is reported before a process is started, with the places that were looked at.
 */
import * as http from 'node:http';
import { EngineConfigError, EngineTarget, findEngine } from '../../agent/engine/engineHost';

export interface DockerCheck {
  ok: boolean;
  /** The address and how it was chosen: `unix:///var/run/docker.sock (the default socket)`. */
  where: string;
  error?: string;
  /** What was looked at, in order, for the message when nothing answers. */
  looked: string[];
}

export function pingDocker(context?: string, timeoutMs = 3000): Promise<DockerCheck> {
  let target: EngineTarget;
  try {
    target = findEngine({ context });
  } catch (err) {
    if (!(err instanceof EngineConfigError)) throw err;
    return Promise.resolve({ ok: false, where: context ? `context "${context}"` : 'the Docker CLI config', error: err.message, looked: [] });
  }
  const where = `${target.host} (${target.how})`;
  let opts: http.RequestOptions;
  if (target.host.startsWith('unix://')) {
    opts = { socketPath: target.host.slice('unix://'.length) || '/var/run/docker.sock' };
  } else if (/^(tcp|http):\/\//.test(target.host) && !target.tls?.cert && !target.tls?.ca) {
    const u = new URL(target.host.replace(/^tcp:/, 'http:'));
    opts = { host: u.hostname, port: Number(u.port || 2375) };
  } else {
    // ssh://, TLS and named pipes: the agent knows how to reach them and reports its own failure.
    return Promise.resolve({ ok: true, where, looked: target.looked });
  }
  return new Promise((resolve) => {
    const req = http.get({ ...opts, path: '/_ping', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? { ok: true, where, looked: target.looked } : { ok: false, where, error: `HTTP ${res.statusCode}`, looked: target.looked });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, where, error: err.message, looked: target.looked }));
  });
}
