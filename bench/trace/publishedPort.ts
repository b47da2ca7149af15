// Not part of `npm run bench`: what `docker run -p 127.0.0.1:PORT:8000` (the engine's own proxy for loopback
// traffic) gives against the container's address, with the ports bench's load (autocannon, 64 connections), for
// issue 13's idea of letting a local agent publish a run's ports instead of piping them in Node.
import { execFileSync } from 'node:child_process';
import autocannon from 'autocannon';
import { serviceContext, SERVICE_PORT } from '../../test/agent/serviceImage';
import { DOCKER } from '../lib';

(async () => {
  const tag = 'bytenite-trace-published:1';
  execFileSync(DOCKER, ['build', '-q', '-t', tag, serviceContext()], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
  const id = execFileSync(DOCKER, ['run', '-d', '--rm', '-p', `127.0.0.1:18080:${SERVICE_PORT}`, tag], { encoding: 'utf8' }).trim();
  try {
    const ip = execFileSync(DOCKER, ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', id], { encoding: 'utf8' }).trim();
    await new Promise((r) => setTimeout(r, 1000));
    const seconds = Number(process.env.SECONDS_EACH ?? 8);
    for (let i = 0; i < 2; i++) {
      for (const [name, url] of [['published 127.0.0.1:18080', 'http://127.0.0.1:18080/'], ['direct', `http://${ip}:${SERVICE_PORT}/`]]) {
        const r = await autocannon({ url, connections: 64, duration: seconds, pipelining: 1 });
        console.log(`${name}: ${r.requests.average.toFixed(0)} req/s p99 ${r.latency.p99} ms, errors ${r.errors}`);
      }
    }
  } finally {
    execFileSync(DOCKER, ['rm', '-f', id]);
  }
})();
