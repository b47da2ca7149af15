/** The log toolbar settings a panel saves and restores. */
import type { LogStream } from '../protocol';

export interface LogViewUi {
  query: string;
  streams: LogStream[];
  timestamps: boolean;
  /** True: the query filters the list. False: it only highlights, and Enter jumps between matches. */
  onlyMatching: boolean;
  following: boolean;
  /** Where the user had scrolled to, when not following. */
  scrollTop?: number;
}

export const DEFAULT_LOG_UI: LogViewUi = { query: '', streams: ['stdout', 'stderr', 'build'], timestamps: false, onlyMatching: true, following: true };
