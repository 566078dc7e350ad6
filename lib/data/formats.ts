/**
 * Dataset formats: detect what a row looks like and normalise it to one of two record types,
 * raw text or a conversation. Supported: raw text, prompt/completion, alpaca
 * (instruction/input/output + system/history), sharegpt (`conversations` with from/value),
 * OpenAI messages (`messages` with role/content), `conversations` with role/content, and a
 * column mapping for anything else (dotted paths reach nested fields: `instances.0.output`).
 */
import type { ChatMessage } from '../text/chat-template.js';
import { LorafitDataError } from './errors.js';

export type DatasetFormat = 'text' | 'prompt-completion' | 'alpaca' | 'sharegpt' | 'messages' | 'conversations';

export const DATASET_FORMATS: readonly DatasetFormat[] = [
  'text',
  'prompt-completion',
  'alpaca',
  'sharegpt',
  'messages',
  'conversations',
];

export interface RecordSource {
  file?: string;
  line?: number;
}

export interface TextRecord {
  kind: 'text';
  text: string;
  source?: RecordSource;
}

export interface ConversationRecord {
  kind: 'conversation';
  messages: ChatMessage[];
  /** Tool definitions for templates that render them (sharegpt/glaive `tools`, OpenAI `tools`). */
  tools?: unknown[];
  source?: RecordSource;
}

export type DataRecord = TextRecord | ConversationRecord;

/** Where each field lives in a row; values are column names or dotted paths. */
export interface ColumnMapping {
  text?: string;
  prompt?: string;
  completion?: string;
  instruction?: string;
  input?: string;
  output?: string;
  system?: string;
  history?: string;
  /** The list of messages (sharegpt/messages/conversations). */
  messages?: string;
  /** Key of the role inside each message (`role`, `from`). */
  role?: string;
  /** Key of the text inside each message (`content`, `value`). */
  content?: string;
  tools?: string;
}

export interface FormatOptions {
  /** Force a format; default: detect from the first row of each file. */
  format?: DatasetFormat | 'auto';
  columns?: ColumnMapping;
  /** Extra role names -> `system` | `user` | `assistant` | `tool` (merged over the sharegpt defaults). */
  roleMap?: Record<string, string>;
  /** Joins an array-valued text column (e.g. poem lines). Default `\n`. */
  textJoiner?: string;
}

const SHAREGPT_ROLES: Record<string, string> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  model: 'assistant',
  chatgpt: 'assistant',
  bard: 'assistant',
  system: 'system',
  function_call: 'assistant',
  observation: 'tool',
  function: 'tool',
  tool: 'tool',
};

/** Guess the format of a row; null when nothing fits. Column mapping names take part in detection. */
export function detectFormat(row: Record<string, unknown>, columns: ColumnMapping = {}): DatasetFormat | null {
  const has = (key: string | undefined, fallback: string): boolean => getPath(row, key ?? fallback) !== undefined;
  const list = (key: string): unknown[] | null => {
    const value = getPath(row, key);
    return Array.isArray(value) ? value : null;
  };
  for (const key of columns.messages ? [columns.messages] : ['messages', 'conversations', 'conversation']) {
    const messages = list(key);
    if (messages === null) continue;
    const first = messages.find((m) => m !== null && typeof m === 'object') as Record<string, unknown> | undefined;
    if (columns.role || columns.content) return key === 'messages' ? 'messages' : 'conversations';
    if (first && 'from' in first && 'value' in first) return 'sharegpt';
    if (first && 'role' in first) return key === 'messages' ? 'messages' : 'conversations';
    if (!first) return key === 'messages' ? 'messages' : 'conversations';
  }
  if (has(columns.instruction, 'instruction') && has(columns.output, 'output')) return 'alpaca';
  if (has(columns.prompt, 'prompt') && has(columns.completion, 'completion')) return 'prompt-completion';
  if (has(columns.text, 'text')) return 'text';
  return null;
}

/** Turn one row into a record of the given format; errors name the file, line and key at fault. */
export function normalizeRow(
  row: Record<string, unknown>,
  format: DatasetFormat,
  options: FormatOptions = {},
  source: RecordSource = {},
): DataRecord {
  const columns = options.columns ?? {};
  const fail = (message: string, key?: string): never => {
    throw new LorafitDataError('E_DATA_FORMAT', message, { file: source.file, line: source.line, key });
  };
  const text = (key: string, required: boolean): string | undefined => {
    const value = getPath(row, key);
    if (value === undefined || value === null) {
      if (required) fail(`missing column "${key}" (columns present: ${Object.keys(row).join(', ') || 'none'})`, key);
      return undefined;
    }
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(options.textJoiner ?? '\n');
    return fail(`column "${key}" must be text, got ${Array.isArray(value) ? 'an array' : typeof value}`, key);
  };

  switch (format) {
    case 'text':
      return { kind: 'text', text: text(columns.text ?? 'text', true) as string, source };
    case 'prompt-completion': {
      const promptKey = columns.prompt ?? 'prompt';
      const completionKey = columns.completion ?? 'completion';
      const prompt = getPath(row, promptKey);
      const completion = getPath(row, completionKey);
      // TRL's conversational prompt/completion: both sides are message lists.
      if (Array.isArray(prompt) && Array.isArray(completion) && prompt.every(isObject)) {
        const messages = [...prompt, ...completion].map((m, i) => toMessage(m, i, 'role', 'content', {}, fail, promptKey));
        return conversation(messages, undefined, source, fail);
      }
      const messages: ChatMessage[] = [];
      const system = columns.system ? text(columns.system, false) : undefined;
      if (system) messages.push({ role: 'system', content: system });
      messages.push({ role: 'user', content: text(promptKey, true) as string });
      messages.push({ role: 'assistant', content: text(completionKey, true) as string });
      return conversation(messages, undefined, source, fail);
    }
    case 'alpaca': {
      const messages: ChatMessage[] = [];
      const system = text(columns.system ?? 'system', false);
      if (system) messages.push({ role: 'system', content: system });
      const historyKey = columns.history ?? 'history';
      const history = getPath(row, historyKey);
      if (history !== undefined && history !== null) {
        if (!Array.isArray(history)) fail('history must be a list of [instruction, response] pairs', historyKey);
        (history as unknown[]).forEach((pair, i) => {
          if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
            fail(`history[${i}] must be a [instruction, response] pair of strings`, historyKey);
          }
          const [q, a] = pair as [string, string];
          messages.push({ role: 'user', content: q }, { role: 'assistant', content: a });
        });
      }
      const instruction = text(columns.instruction ?? 'instruction', true) as string;
      const input = text(columns.input ?? 'input', false);
      messages.push({ role: 'user', content: input ? `${instruction}\n${input}` : instruction });
      messages.push({ role: 'assistant', content: text(columns.output ?? 'output', true) as string });
      return conversation(messages, undefined, source, fail);
    }
    case 'sharegpt':
    case 'messages':
    case 'conversations': {
      const key = columns.messages ?? (format === 'messages' ? 'messages' : 'conversations');
      const list = getPath(row, key);
      if (list === undefined) fail(`missing column "${key}" (columns present: ${Object.keys(row).join(', ')})`, key);
      if (!Array.isArray(list)) fail(`"${key}" must be a list of messages`, key);
      const roleKey = columns.role ?? (format === 'sharegpt' ? 'from' : 'role');
      const contentKey = columns.content ?? (format === 'sharegpt' ? 'value' : 'content');
      const roles = format === 'sharegpt' || options.roleMap ? { ...SHAREGPT_ROLES, ...options.roleMap } : {};
      const messages = (list as unknown[]).map((m, i) => toMessage(m, i, roleKey, contentKey, roles, fail, key));
      const system = text(columns.system ?? 'system', false);
      if (system && messages[0]?.role !== 'system') messages.unshift({ role: 'system', content: system });
      return conversation(messages, readTools(row, columns.tools ?? 'tools', fail), source, fail);
    }
    default:
      return fail(`unknown format "${String(format)}"; expected one of ${DATASET_FORMATS.join(', ')}`);
  }
}

function toMessage(
  value: unknown,
  index: number,
  roleKey: string,
  contentKey: string,
  roles: Record<string, string>,
  fail: (message: string, key?: string) => never,
  listKey: string,
): ChatMessage {
  const at = `${listKey}[${index}]`;
  if (!isObject(value)) return fail(`${at} must be an object with "${roleKey}" and "${contentKey}"`, listKey);
  const rawRole = value[roleKey];
  if (typeof rawRole !== 'string') return fail(`${at} has no "${roleKey}" string`, `${at}.${roleKey}`);
  const role = Object.keys(roles).length > 0 ? roles[rawRole] : rawRole;
  if (role === undefined) {
    return fail(`${at} has unknown role "${rawRole}" (known: ${Object.keys(roles).join(', ')}; add it with roleMap)`, `${at}.${roleKey}`);
  }
  const content = messageContent(value[contentKey]);
  if (content === null) {
    return fail(`${at}.${contentKey} must be a string or a list of {type: "text", text} parts`, `${at}.${contentKey}`);
  }
  const message: ChatMessage = { role, content };
  for (const [k, v] of Object.entries(value)) {
    if (k !== roleKey && k !== contentKey && v !== undefined && v !== null) message[k] = v;
  }
  return message;
}

/** String content, OpenAI text parts joined, or "" for an assistant tool call without text. */
function messageContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) {
    const parts = value.map((p) => (typeof p === 'string' ? p : isObject(p) && typeof p.text === 'string' ? p.text : null));
    return parts.every((p) => p !== null) ? parts.join('') : null;
  }
  return null;
}

function readTools(row: Record<string, unknown>, key: string, fail: (m: string, k?: string) => never): unknown[] | undefined {
  let tools = getPath(row, key);
  if (tools === undefined || tools === null || tools === '') return undefined;
  if (typeof tools === 'string') {
    try {
      tools = JSON.parse(tools);
    } catch {
      return fail(`"${key}" is a string but not valid JSON`, key);
    }
  }
  if (!Array.isArray(tools)) return fail(`"${key}" must be a list of tool definitions`, key);
  return tools.length > 0 ? tools : undefined;
}

function conversation(
  messages: ChatMessage[],
  tools: unknown[] | undefined,
  source: RecordSource,
  fail: (m: string, k?: string) => never,
): ConversationRecord {
  if (!messages.some((m) => m.role === 'assistant')) fail('conversation has no assistant message to learn from');
  return tools ? { kind: 'conversation', messages, tools, source } : { kind: 'conversation', messages, source };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `a.b.0.c` lookup; a key containing dots that exists as-is wins. */
export function getPath(row: Record<string, unknown>, path: string): unknown {
  if (path in row) return row[path];
  let value: unknown = row;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
