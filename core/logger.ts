// The logging surface every layer uses; pino (through Fastify) implements it, tests pass a silent one.

type LogFn = {
  (msg: string): void;
  (obj: object, msg?: string): void;
};

export interface Logger {
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

const noop = () => {};

export const silentLogger: Logger = {
  error: noop,
  warn: noop,
  info: noop,
  debug: noop,
  child: () => silentLogger,
};
