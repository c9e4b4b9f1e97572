import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../common/logger';

/** Routes the SDK's own logs (worker state, task failures) into the process's structured log. */
export function installRuntimeLogging(log: Logger): void {
  const toPino: Record<LogLevel, (obj: object, msg: string) => void> = {
    TRACE: (o, m) => log.trace(o, m),
    DEBUG: (o, m) => log.debug(o, m),
    INFO: (o, m) => log.info(o, m),
    WARN: (o, m) => log.warn(o, m),
    ERROR: (o, m) => log.error(o, m),
  };
  Runtime.install({
    logger: new DefaultLogger('INFO', (entry) => toPino[entry.level]({ sdk: entry.meta ?? {} }, entry.message)),
  });
}
