/**
 * Types shared by the run manager and the code that ends runs on its behalf (agent/runs/runRecovery.ts):
 * what a final event holds besides its kind, and what the supervision of a container needs to write it.
 */
import type { FinalEvent } from '../protocol';
import type { SecretRedactor } from './secretRedactor';

export type FinalFields = Omit<FinalEvent, 'kind' | 'code' | 'message'>;
export type Phases = FinalFields['phases'];

/** What the supervision of a running container needs to know to write the final event. */
export interface Watch {
  phases: Phases;
  base(over?: Partial<FinalFields>): FinalFields;
  /** When the run times out (ms since the epoch), if it has a timeout. */
  deadline?: number;
  /** The output has ended: what the secret redactor held back as a possible start of a secret is plain text after all. */
  flush?: SecretRedactor;
  /** Called as soon as the container has stopped, before its outputs are copied. */
  exited?(): void;
}
