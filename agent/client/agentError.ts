import type { ErrorCode } from '../protocol';

/** An error the agent answered with (its code from the protocol), or `connection` when the socket failed or closed. */
export class AgentError extends Error {
  constructor(readonly code: ErrorCode | 'connection', message: string) {
    super(message);
    this.name = 'AgentError';
  }
}
