import type { z } from 'zod';
import type { ErrorCode } from './messages';
import { MAX_TEXT_FRAME } from './version';

/**
 * The protocol's schemas (messages.ts), built at the first call instead of at load. Building them all is
 * most of what a client's bundle does at its start (zod makes an object for each step of each chain); a CLI
 * that asks for them while its connection opens (AgentClient.connect) builds them while it would wait anyway.
 * A client that imports only this file, finalEvent.ts and version.ts (not ./index) keeps them unbuilt until then.
 */
export function protocolSchemas(): typeof import('./messages') {
  // A require, not an import: an import is built at load. esbuild bundles it behind an init function.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./messages') as typeof import('./messages');
}

export type ParseResult<T> =
  | { ok: true; message: T }
  | { ok: false; code: ErrorCode; message: string; inReplyTo?: string };

/** Names every problem with its path, e.g. `spec.hardware.cpus: Too small: expected number to be >0`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(message)'}: ${i.message}`)
    .join('; ');
}

function parseWith<S extends z.ZodType>(schema: S, text: string, what: string): ParseResult<z.infer<S>> {
  if (text.length > MAX_TEXT_FRAME) {
    return { ok: false, code: 'too_large', message: `${what} is ${text.length} bytes; the limit is ${MAX_TEXT_FRAME}` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, code: 'bad_json', message: `${what} is not valid JSON: ${(err as Error).message}` };
  }
  // Echo the id when it is readable, so the client can match the error to its request.
  const inReplyTo =
    raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string'
      ? ((raw as { id: string }).id).slice(0, 128)
      : undefined;
  const result = schema.safeParse(raw);
  if (!result.success) {
    return { ok: false, code: 'bad_message', message: `invalid ${what}: ${describeIssues(result.error)}`, inReplyTo };
  }
  return { ok: true, message: result.data };
}

/** Parses and validates one text frame from a client. */
export const parseClientMessage = (text: string) => parseWith(protocolSchemas().ClientMessage, text, 'message');

/** Parses and validates one text frame from an agent. */
export const parseAgentMessage = (text: string) => parseWith(protocolSchemas().AgentMessage, text, 'agent message');
