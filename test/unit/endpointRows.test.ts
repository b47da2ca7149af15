// The words of the endpoint views: the state (idle / starting / serving N, as `bytenite endpoints` says it),
// the sidebar row, the request table's rows with cold wakes called out, and the default endpoint name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointSummary, RequestRecord } from '../../agent/protocol';
import { defaultEndpointName, endpointHeader, endpointRow, endpointState } from '../../extension/endpoints/endpointView';
import { endpointRowText } from '../../webview/sidebar/sidebarModel';
import { MAX_ROWS, mergeRequests, requestRowText } from '../../webview/endpoint/requestRows';

const summary = (instances: EndpointSummary['instances']): EndpointSummary => ({
  name: 'web', path: '/e/web/', settings: { port: 8000, min: 0, max: 4, idleMs: 60_000, concurrency: 32, public: false },
  hardware: { cpus: 0.5, memoryMiB: 256 }, image: 'sha256:x', createdAt: '2026-01-01T00:00:00Z', instances, queued: 2, requests: 1234,
  cost: { today: 0.0021, total: 0.01, since: '2026-01-01T00:00:00Z', idle: { usd: 0.001, ms: 60_000, text: 'each wake keeps …' }, reference: [] },
});

test('state: idle at zero, starting while one starts, else serving N', () => {
  assert.equal(endpointState(summary([])).stateText, 'idle');
  assert.equal(endpointState(summary([{ runId: 'r-1', state: 'ready', inFlight: 0 }, { runId: 'r-2', state: 'starting', inFlight: 0 }])).stateText, 'starting');
  assert.deepEqual(endpointState(summary([{ runId: 'r-1', state: 'ready', inFlight: 1 }, { runId: 'r-2', state: 'ready', inFlight: 0 }, { runId: 'r-3', state: 'stopping', inFlight: 0 }])),
    { state: 'serving', stateText: 'serving 2' });
});

test('sidebar row: requests (today where the agent counts them), held, cost today', () => {
  const row = endpointRow(summary([]), 'http://127.0.0.1:1/e/web/');
  assert.equal(endpointRowText(row).detail, '1,234 req · 2 held · $0.002100 today');
  assert.match(endpointRowText(row).label, /^Endpoint web, idle, 1234 requests since the agent started, 2 held, \$0\.002100 today, http:/);
  const counted = endpointRow({ ...summary([]), requestsToday: 56 }, 'http://127.0.0.1:1/e/web/');
  assert.equal(endpointRowText(counted).detail, '56 req today · 2 held · $0.002100 today');
  assert.match(endpointRowText(counted).label, /^Endpoint web, idle, 56 requests today, 2 held, /);
  assert.equal(endpointHeader(summary([]), 'u', 'local').settings, '0..4 instances · idle 60 s · 32 per instance · port 8000 · needs the agent token');
});

const rec = (seq: number, extra: Partial<RequestRecord> = {}): RequestRecord => ({
  seq, time: '2026-01-01T10:00:00.250Z', requestId: 'x', method: 'GET', path: '/', status: 200, bytesIn: 0, bytesOut: 2048, heldMs: 0, firstByteMs: 3, totalMs: 4, ...extra,
});

test('request rows: status tone, timing, a cold wake called out, latest first and bounded', () => {
  const cold = requestRowText(rec(1, { heldMs: 527, totalMs: 530, firstByteMs: 528, wake: { start: 'cold', admitMs: 10, startMs: 499, readyMs: 8 } }));
  assert.equal(cold.wake, 'cold wake: admit 10 ms · start 499 ms · ready 8 ms');
  assert.equal(cold.wakeKind, 'cold');
  assert.equal(cold.detail, 'held 527 ms · first byte 528 ms · 2.0 KiB out');
  assert.equal(cold.tone, 'ok');
  assert.equal(requestRowText(rec(2, { status: 503, error: 'held 60 s' })).tone, 'error');
  assert.equal(requestRowText(rec(3, { status: 404 })).tone, 'client');
  assert.equal(requestRowText(rec(4, { status: 0 })).status, 'left');
  const held = new Map<number, RequestRecord>();
  mergeRequests(held, [rec(1), rec(2)]);
  assert.deepEqual(mergeRequests(held, [rec(2), rec(3)]).map((r) => r.seq), [3, 2, 1], 'each seq once, latest first');
  const many = mergeRequests(held, Array.from({ length: MAX_ROWS + 10 }, (_, i) => rec(i + 10)));
  assert.equal(many.length, MAX_ROWS);
  assert.equal(held.size, MAX_ROWS);
});

test('default name: the folder, made a valid endpoint name', () => {
  assert.equal(defaultEndpointName('web'), 'web');
  assert.equal(defaultEndpointName('My_API v2'), 'my-api-v2');
  assert.equal(defaultEndpointName('__'), 'endpoint');
  assert.equal(defaultEndpointName('x'.repeat(80)).length, 63);
});
