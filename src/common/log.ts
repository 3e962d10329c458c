/** Log levels, lowest first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where a logger writes: anything with a `write(string)`. */
export interface LogSink {
  write(text: string): unknown;
}

/** A levelled logger; lines carry an ISO time, the level and an optional component. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** A logger for a sub-component, sharing sinks and level. */
  child(component: string): Logger;
  readonly level: LogLevel;
}

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  sinks?: LogSink[];
  component?: string;
  /** Clock, injectable for tests. */
  now?: () => Date;
}

/** Creates a logger that writes one line per message to each sink. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const sinks = options.sinks ?? [process.stderr];
  const now = options.now ?? (() => new Date());
  const threshold = LOG_LEVELS.indexOf(level);
  const make = (component: string | undefined): Logger => {
    const emit = (lvl: LogLevel, message: string): void => {
      if (LOG_LEVELS.indexOf(lvl) < threshold) return;
      const where = component ? ` ${component}:` : '';
      const line = `${now().toISOString()} ${lvl.toUpperCase().padEnd(5)}${where} ${message}\n`;
      for (const sink of sinks) sink.write(line);
    };
    return {
      level,
      debug: (m) => emit('debug', m),
      info: (m) => emit('info', m),
      warn: (m) => emit('warn', m),
      error: (m) => emit('error', m),
      child: (c) => make(component ? `${component}.${c}` : c),
    };
  };
  return make(options.component);
}

/** A logger that drops everything (for library callers that pass none). */
export const silentLogger: Logger = createLogger({ level: 'error', sinks: [] });
