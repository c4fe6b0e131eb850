// The process's last line of defence: what escapes every containment still leaves a log line. An unhandled
// rejection is logged and serving goes on (one forgotten catch must not drop every request in flight); an uncaught
// exception leaves the process in an unknown state, so it is logged and the process exits with status 1.
import type { Logger } from './logger.js';

export interface LastResortOptions {
  readonly logger: Logger;
  /** How the process ends after an uncaught exception (tests pass their own). */
  readonly exit?: (code: number) => void;
  readonly target?: Pick<NodeJS.Process, 'on' | 'off'>;
}

/** Installs the handlers; returns a function that removes them. */
export function installLastResort(options: LastResortOptions): () => void {
  const target = options.target ?? process;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const onRejection = (reason: unknown) => {
    options.logger.error({ err: reason }, 'unhandled promise rejection (a bug); serving goes on');
  };
  const onException = (err: Error, origin: string) => {
    options.logger.error({ err, origin }, 'uncaught exception (a bug); exiting with status 1');
    exit(1);
  };
  target.on('unhandledRejection', onRejection);
  target.on('uncaughtException', onException);
  return () => {
    target.off('unhandledRejection', onRejection);
    target.off('uncaughtException', onException);
  };
}
