// Token tables, the failed-authentication limiter and secret redaction, without an agent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TENANT, parseTokenTable, tenantOf } from '../../agent/auth/tokens';
import { AuthLimiter } from '../../agent/auth/authLimiter';
import { SecretRedactor } from '../../agent/runs/secretRedactor';

test('a token file maps tokens to tenants; a bare token is the default tenant', () => {
  assert.deepEqual([...parseTokenTable('  tok-single-0123456789\n')], [['tok-single-0123456789', DEFAULT_TENANT]]);
  const t = parseTokenTable('# comment\nalice aaaaaaaaaaaaaaaaaaaa\n\nbob\tbbbbbbbbbbbbbbbbbbbb\ncccccccccccccccccccc\r\n');
  assert.equal(tenantOf('aaaaaaaaaaaaaaaaaaaa', t), 'alice');
  assert.equal(tenantOf('bbbbbbbbbbbbbbbbbbbb', t), 'bob');
  assert.equal(tenantOf('cccccccccccccccccccc', t), DEFAULT_TENANT);
  assert.equal(tenantOf('alice', t), undefined);
  assert.equal(tenantOf(undefined, t), undefined);
  assert.throws(() => parseTokenTable('a b c\n'), /line 1/);
  assert.throws(() => parseTokenTable('x x\ny x\n'), /line 2: this token is listed twice/);
  assert.throws(() => parseTokenTable('# nothing\n'), /no token/);
  // An error never quotes the token.
  assert.throws(() => parseTokenTable('bad/name s3cr3t-token-value\n'), (e: Error) => !e.message.includes('s3cr3t'));
});

test('failed authentications from one address are limited; others are not affected; the bucket refills', () => {
  let now = 0;
  const l = new AuthLimiter({ burst: 3, refillPerSecond: 1 }, () => now);
  for (let i = 0; i < 3; i++) {
    assert.equal(l.retryAfter('1.2.3.4'), 0);
    l.failed('1.2.3.4');
  }
  assert.equal(l.retryAfter('1.2.3.4'), 1);
  assert.equal(l.retryAfter('5.6.7.8'), 0);
  now += 1000;
  assert.equal(l.retryAfter('1.2.3.4'), 0);
  l.failed('1.2.3.4');
  assert.ok(l.retryAfter('1.2.3.4') > 0);
});

test('secret values are replaced by *** in output, even split across chunks, and nothing else is held', () => {
  const r = new SecretRedactor({ TOKEN: 'hunter2-secret', PLAIN: 'visible' }, ['TOKEN']);
  assert.equal(r.redact('a hunter2-secret b hunter2-secret'), 'a *** b ***');
  let out = '';
  for (const chunk of ['line 1 hunt', 'er2-sec', 'ret end\n', 'visible h']) out += r.push('stdout', chunk);
  out += r.flush('stdout');
  assert.equal(out, 'line 1 *** end\nvisible h');
  assert.equal(r.push('stderr', 'no secret here\n'), 'no secret here\n', 'text that cannot start a secret is not held back');
  const none = new SecretRedactor({ A: '' }, ['A', 'MISSING']);
  assert.equal(none.push('stdout', 'abc'), 'abc');
});
