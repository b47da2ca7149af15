/**
 * The agent's log: JSON lines on stderr (pino). Tokens and env values are redacted by path as a second
 * line of defence; the first is that the code never hands them to the logger.
 */
import pino, { Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = process.env.BYTENITE_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { svc: 'bytenite-agent' },
      redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'env', '*.env', 'spec.env', 'headers.authorization', 'buildSecrets', '*.buildSecrets', 'spec.buildSecrets'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
