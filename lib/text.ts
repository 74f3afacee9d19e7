/**
 * Attacker-written text made inert, with no dependency so that every bundle (the runtime's too) can share it.
 *
 * JSON escapes C0 controls and lone surrogates but leaves C1 controls (U+009B is a terminal's CSI), bidi overrides
 * and invisible format characters, which could make a line in `kubectl logs` or `kubectl describe` read other than it
 * is. One character class, matched once per character: linear in the text whatever it holds.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff\u{e0000}-\u{e007f}]/gu;

const escape = (unit: number) => `\\u${unit.toString(16).padStart(4, '0')}`;

/**
 * `printable('a\u202eb')` is `a\\u202eb` (an escape, not the character). Tag characters (U+E0000 to U+E007F: text
 * no reader sees and tools read) are escaped as their two UTF-16 halves, as JSON writes them.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => (c.length === 1 ? escape(c.charCodeAt(0)) : escape(c.charCodeAt(0)) + escape(c.charCodeAt(1))));
}

/**
 * `text` when it holds at most `max` UTF-16 units; else its first `max` (one fewer where the last would be half a
 * surrogate pair) and `mark`, by default the length: `clipped('abcdef', 3)` is `abc… (6 characters)`.
 */
export function clipped(text: string, max: number, mark = `… (${text.length} characters)`): string {
  if (text.length <= max) return text;
  const end = /[\ud800-\udbff]/.test(text.charAt(max - 1)) ? max - 1 : max;
  return text.slice(0, end) + mark;
}
