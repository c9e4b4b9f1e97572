import pino, { type Logger } from 'pino';

/**
 * One structured logger for every process. Secrets are redacted by key name wherever they
 * appear in a log object, so a careless `log.info({ config })` cannot leak them.
 */
export const REDACTED_KEYS = [
  '*.secretAccessKey',
  '*.accessKeyId',
  '*.apiKey',
  '*.token',
  '*.tokens',
  '*.password',
  '*.authorization',
  '*.headers.authorization',
  'secretAccessKey',
  'apiKey',
  'token',
  'authorization',
];

export function createLogger(component: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name: component,
      level: process.env.LOG_LEVEL ?? 'info',
      redact: { paths: REDACTED_KEYS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export type { Logger };
