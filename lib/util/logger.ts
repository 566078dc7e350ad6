// pino logger shared by the library. Silent unless LORAFIT_LOG_LEVEL is set or a logger is passed.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; file?: string } = {}): Logger {
  const level = options.level ?? process.env.LORAFIT_LOG_LEVEL ?? 'silent';
  if (options.file) return pino({ level, base: { lib: 'lorafit' } }, pino.destination({ dest: options.file, mkdir: true, sync: false }));
  return pino({ level, base: { lib: 'lorafit' } });
}

export const defaultLogger: Logger = createLogger();
