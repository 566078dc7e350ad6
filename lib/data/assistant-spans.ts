/**
 * Where the assistant turns are in a rendered conversation.
 *
 * The whole conversation is rendered once (rendering prefixes breaks for templates such as
 * Qwen3's, which drop earlier reasoning and add an empty think block after the last user turn) and
 * each assistant message is located in that string. A span runs from the start of the message's
 * content through the template's end-of-turn marker (`<|im_end|>`, `<|eot_id|>`, ...), so the tuned
 * model learns to stop; anything the template writes between the two (tool calls) is included.
 *
 * Locating the content start: render again with that message's content replaced by a sentinel; if
 * the text before the sentinel is a prefix of the real render, the content starts right there
 * (robust to templates that trim content or to content repeated in earlier turns). Otherwise fall
 * back to searching the content (as is, trimmed, or after a `</think>` block) after the previous
 * turn.
 *
 * When the template has an end-of-turn marker but it does not follow an assistant message (a
 * template that leaves the last turn open, a message cut short), that is an E_CHAT_TEMPLATE error
 * naming the message (tokenize adds the record's file:line): ending the span at the content would
 * silently train a model that never stops. Templates with no marker at all end spans at the content.
 */
import type { ChatMessage } from '../text/chat-template.js';
import { LorafitDataError } from './errors.js';

export interface TextSpan {
  /** UTF-16 offsets into the rendered string, `[start, end)`. */
  start: number;
  end: number;
  /** Index of the assistant message in the conversation. */
  messageIndex: number;
}

export interface LocateOptions {
  /** Renders a conversation with the same template and options as `rendered`. */
  render: (messages: ChatMessage[]) => string;
  /** What closes an assistant turn (from the template), or null if nothing does. */
  endOfTurn: string | null;
}

const SENTINEL = '\u2063LORAFIT_ASSISTANT_CONTENT\u2063';

export function locateAssistantSpans(rendered: string, messages: ChatMessage[], options: LocateOptions): TextSpan[] {
  const spans: TextSpan[] = [];
  const marker = options.endOfTurn?.trimStart() || null;
  let cursor = 0;
  messages.forEach((message, index) => {
    const content = typeof message.content === 'string' ? message.content : '';
    if (message.role !== 'assistant') {
      const trimmed = content.trim();
      if (trimmed) {
        const at = rendered.indexOf(trimmed, cursor);
        if (at >= 0) cursor = at + trimmed.length;
      }
      return;
    }
    let start = sentinelStart(rendered, messages, index, options.render, cursor);
    let contentEnd: number;
    if (start !== null) {
      contentEnd = start;
      for (const variant of contentVariants(content)) {
        if (rendered.startsWith(variant, start)) {
          contentEnd = start + variant.length;
          break;
        }
      }
    } else {
      const found = searchContent(rendered, content, cursor);
      if (found === null) {
        throw new LorafitDataError(
          'E_CHAT_TEMPLATE',
          `assistant message ${index} cannot be found in the rendered conversation (the chat template rewrites it); ` +
            'use trainOn: "all" or a template that keeps assistant content verbatim',
        );
      }
      start = found.start;
      contentEnd = found.end;
    }
    let end = contentEnd;
    if (marker !== null) {
      const at = rendered.indexOf(marker, contentEnd);
      if (at < 0) {
        throw new LorafitDataError(
          'E_CHAT_TEMPLATE',
          `assistant message ${index} is not closed by the template's end-of-turn marker ${JSON.stringify(marker)}, ` +
            'so the model would not learn to stop; use a template that closes every assistant turn, or trainOn: "all"',
        );
      }
      end = at + marker.length;
    }
    spans.push({ start, end, messageIndex: index });
    cursor = end;
  });
  return spans;
}

function sentinelStart(
  rendered: string,
  messages: ChatMessage[],
  index: number,
  render: (messages: ChatMessage[]) => string,
  cursor: number,
): number | null {
  let probe: string;
  try {
    probe = render(messages.map((m, i) => (i === index ? { ...m, content: SENTINEL } : m)));
  } catch {
    return null;
  }
  const at = probe.indexOf(SENTINEL);
  if (at < cursor) return null;
  return rendered.startsWith(probe.slice(0, at)) ? at : null;
}

/** Forms a template may render an assistant message's content in, most specific first. */
function contentVariants(content: string): string[] {
  const variants = [content, content.trim()];
  const think = content.lastIndexOf('</think>');
  if (think >= 0) {
    const after = content.slice(think + '</think>'.length);
    variants.push(after.replace(/^\n+/, ''), after.trim());
  }
  return [...new Set(variants)].filter((v) => v.length > 0);
}

function searchContent(rendered: string, content: string, cursor: number): { start: number; end: number } | null {
  for (const variant of contentVariants(content)) {
    const at = rendered.indexOf(variant, cursor);
    if (at >= 0) return { start: at, end: at + variant.length };
  }
  return null;
}

/**
 * Labels for token offsets: a token is trained when it overlaps a span (a token straddling the
 * start of the content is trained rather than losing the content's first characters).
 */
export function labelsFromSpans(
  ids: ArrayLike<number>,
  offsets: ReadonlyArray<readonly [number, number]>,
  spans: readonly TextSpan[],
  ignoreIndex = -100,
): Int32Array {
  const labels = new Int32Array(ids.length).fill(ignoreIndex);
  let s = 0;
  for (let i = 0; i < ids.length; i++) {
    const [start, end] = offsets[i];
    if (end <= start) continue; // added special tokens carry empty offsets
    while (s < spans.length && spans[s].end <= start) s++;
    if (s < spans.length && spans[s].start < end) labels[i] = ids[i];
  }
  return labels;
}
