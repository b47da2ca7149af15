// The webview repeats a few agent shapes as plain types (it may not import agent/ code). These checks fail
// to type-check (`npx tsc --noEmit`) when the copies drift, and at run time when a sample is not valid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as agent from '../../agent/protocol/messages';
import type * as web from '../../webview/protocol';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

const runEventSame: Same<agent.RunEvent, web.RunEvent> = true;
const finalSame: Same<agent.FinalEvent, web.FinalEvent> = true;
const costSame: Same<agent.CostBreakdown, web.CostBreakdown> = true;
const phasesSame: Same<agent.Phases, web.Phases> = true;
const stateSame: Same<agent.RunSummary['state'], web.RunState> = true;

test('the copied shapes match the agent schema', () => {
  assert.deepEqual([runEventSame, finalSame, costSame, phasesSame, stateSame], [true, true, true, true, true]);
});

test('a final event typed for the webview passes the agent schema', () => {
  const final: web.FinalEvent = {
    kind: 'exited', exitCode: 137, oomKilled: true, durationMs: 1234, start: 'cold', steps: 3, cachedSteps: 1,
    phases: { queuedMs: 1, uploadMs: 2, buildMs: 3, startMs: 4, runMs: 1234 },
    outputs: { files: 0, bytes: 0 },
    cost: { currency: 'USD', total: 0.001, vcpu: 0.0006, memory: 0.0004, gpu: 0, billedMs: 2000, reference: [{ name: 'AWS Fargate', total: 0.002 }] },
  };
  assert.deepEqual(agent.RunEvent.parse(final), final);
});

const requestSame: Same<agent.RequestRecord, web.RequestRecord> = true;
const instanceSame: Same<agent.EndpointSummary['instances'][number], web.EndpointInstanceView> = true;

test('the endpoint shapes the panel copies match the agent schema', () => {
  assert.deepEqual([requestSame, instanceSame], [true, true]);
});
