// Pure logic of port forwards: reading `-p` as docker run does, and a run's port readiness and tunnels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardUrl, parsePublish } from '../../agent/cli/publishFlag';
import { RunPorts, PortTarget } from '../../agent/tunnel/runPorts';
import type { RunEvent } from '../../agent/protocol';

test('-p reads as docker run -p, listening on 127.0.0.1 unless told', () => {
  assert.deepEqual(parsePublish('8080:80'), { host: '127.0.0.1', localPort: 8080, containerPort: 80 });
  assert.deepEqual(parsePublish('80'), { host: '127.0.0.1', localPort: 0, containerPort: 80 });
  assert.deepEqual(parsePublish('0.0.0.0:8080:80/tcp'), { host: '0.0.0.0', localPort: 8080, containerPort: 80 });
  assert.deepEqual(parsePublish('127.0.0.1::8000'), { host: '127.0.0.1', localPort: 0, containerPort: 8000 });
  assert.deepEqual(parsePublish('[::1]:9000:90'), { host: '::1', localPort: 9000, containerPort: 90 });
  assert.throws(() => parsePublish('53:53/udp'), /only TCP ports/);
  assert.throws(() => parsePublish('8000-8010:8000-8010'), /port ranges are not supported/);
  assert.throws(() => parsePublish('8080:0'), /out of range/);
  assert.throws(() => parsePublish('8080:70000'), /out of range/);
  assert.throws(() => parsePublish('host:8080:80'), /not an IPv4 address/);
  assert.throws(() => parsePublish('1:2:3:4'), /use \[IP:\]\[LOCAL_PORT:\]CONTAINER_PORT/);
  assert.equal(forwardUrl('0.0.0.0', 8080), 'http://127.0.0.1:8080');
  assert.equal(forwardUrl('::1', 8080), 'http://[::1]:8080');
});

function target(listening: Set<number>, startedAt = new Date()): PortTarget {
  return { startedAt, probe: async (p) => listening.has(p), dial: async () => { throw new Error('not in this test'); } };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a watched port is reported once, when it first accepts, with the time since start; one watched later too', async () => {
  const events: RunEvent[] = [];
  const ports = new RunPorts((e) => events.push(e), [80, 443]);
  const listening = new Set<number>();
  ports.running(0, target(listening, new Date(Date.now() - 1000)));
  await wait(100);
  assert.equal(events.length, 0);
  listening.add(80);
  await wait(100);
  assert.equal(events.length, 1);
  const e = events[0];
  assert.ok(e.kind === 'port' && e.port === 80 && e.state === 'ready' && e.ms >= 1000 && e.task === undefined);
  ports.watch([80, 8080]); // 80 again: not reported twice
  listening.add(8080);
  await wait(100);
  assert.deepEqual(events.map((x) => x.kind === 'port' && x.port), [80, 8080]);
  ports.end('the run exited with code 0');
});

test('tunnels are cut with the reason when their container stops or the run ends, and none is let in after', () => {
  const ports = new RunPorts(() => {}, [], true);
  ports.running(0, target(new Set()));
  ports.running(1, target(new Set()));
  const cuts: string[] = [];
  ports.track(0, (code, why) => cuts.push(`t0 ${code} ${why}`));
  const untrack = ports.track(1, (code, why) => cuts.push(`t1 ${code} ${why}`));
  ports.track(1, (code, why) => cuts.push(`t1b ${code} ${why}`));
  untrack(); // closed on its own: not cut again
  ports.stopped(0, 'task 0\'s container exited');
  assert.deepEqual(cuts, ['t0 4001 task 0\'s container exited']);
  assert.equal(ports.target(0), undefined);
  ports.end('the run was cancelled');
  assert.deepEqual(cuts.slice(1), ['t1b 4001 the run was cancelled']);
  assert.equal(ports.ended, 'the run was cancelled');
  ports.running(2, target(new Set()));
  assert.equal(ports.target(2), undefined, 'no container is taken in after the end');
});
