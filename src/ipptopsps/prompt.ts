// The interactive config editor of `<program> edit`: asks for a config name, then each field
// with its type and default, re-asking after a bad answer, as the original's session did.
import type { Queryable } from '../db/index.ts';
import { IppToPspsError } from './errors.ts';
import {
  CONFIG_FIELDS, configFieldText, configNameProblem, findConfig, parseConfigValue, saveConfig, type LoadingConfig,
} from './configs.ts';

/** Reads lines one at a time from an async stream of text or bytes. */
export class LineReader {
  #iterator: AsyncIterator<string | Uint8Array>;
  #buffer = '';
  #ended = false;
  #decoder = new TextDecoder();

  constructor(source: AsyncIterable<string | Uint8Array>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  /** Stops reading the source (a terminal's stdin would otherwise keep the process alive). */
  async close(): Promise<void> {
    this.#ended = true;
    this.#buffer = '';
    await this.#iterator.return?.();
  }

  /** The next line without its newline, or undefined at the end of input. */
  async next(): Promise<string | undefined> {
    for (;;) {
      const nl = this.#buffer.indexOf('\n');
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl).replace(/\r$/, '');
        this.#buffer = this.#buffer.slice(nl + 1);
        return line;
      }
      if (this.#ended) {
        if (this.#buffer === '') return undefined;
        const last = this.#buffer;
        this.#buffer = '';
        return last;
      }
      const chunk = await this.#iterator.next();
      if (chunk.done) this.#ended = true;
      else this.#buffer += typeof chunk.value === 'string' ? chunk.value : this.#decoder.decode(chunk.value, { stream: true });
    }
  }
}

/** Where the editor reads answers and writes questions. */
export interface PromptIo {
  readonly input: LineReader;
  readonly output: { write(s: string): unknown };
}

async function ask(io: PromptIo, question: string): Promise<string> {
  io.output.write(question);
  const line = await io.input.next();
  if (line === undefined) {
    io.output.write('\n');
    throw new IppToPspsError('input_ended', 'the input ended before the config was complete; nothing was saved');
  }
  return line;
}

/**
 * Runs the editor: the config name (new or existing), then every field, showing the type and
 * the default (the current value of an existing config); saves and returns the config.
 */
export async function editConfig(q: Queryable, io: PromptIo): Promise<LoadingConfig> {
  let name: string;
  for (;;) {
    name = (await ask(io, ' * Name for new config, or existing config to edit? ')).trim();
    const problem = configNameProblem(name);
    if (!problem) break;
    io.output.write(`   ! config name "${name}" ${problem}; try again\n`);
  }
  const existing = await findConfig(q, name);
  io.output.write(existing ? `   editing config ${name}\n` : `   creating config ${name}\n`);
  const answers: Record<string, string> = {};
  for (;;) {
    for (const field of CONFIG_FIELDS) {
      const shown = answers[field.name] ?? (existing ? configFieldText(existing, field.name) : field.defaultText);
      for (;;) {
        const question = shown === undefined
          ? ` * ${field.name} (${field.sqlType})? `
          : ` * ${field.name} (${field.sqlType}) hit return to accept default of: '${shown}'? `;
        const typed = (await ask(io, question)).trim();
        if (typed === '' && shown === undefined) {
          io.output.write(`   ! ${field.name} has no default: ${field.help}; try again\n`);
          continue;
        }
        const text = typed === '' ? shown! : typed;
        try {
          parseConfigValue(name, field, text);
          answers[field.name] = text;
          break;
        } catch (error) {
          io.output.write(`   ! ${(error as Error).message}; try again\n`);
        }
      }
    }
    try {
      const saved = await saveConfig(q, name, answers);
      io.output.write(`   saved config ${name}\n`);
      return saved;
    } catch (error) {
      if (!(error instanceof IppToPspsError) || error.code !== 'config_value_invalid') throw error;
      // Fields that only fail together (min above max): ask them all again, answers as defaults.
      io.output.write(`   ! ${error.message}; the fields again\n`);
    }
  }
}
