/**
 * Which run events are final, apart from the schemas (messages.ts re-exports it): a client that only asks
 * this does not build every schema of the protocol at its start (see parse.ts).
 */
import type { FinalEvent, RunEvent } from './messages';

export const FINAL_KINDS: ReadonlySet<string> = new Set(['exited', 'failed', 'cancelled']);
export const isFinal = (e: RunEvent): e is FinalEvent => FINAL_KINDS.has(e.kind);
