/**
 * The two pattern forms a route may use on rule names and namespaces. Both come from the operator, but the text
 * they are matched against comes from the alert, so each is built to stay cheap on any input.
 */

/** Longest glob or regular expression a routing table may hold. */
export const MAX_PATTERN_LENGTH = 200;

/**
 * `globMatches('Launch * Container', 'Launch Privileged Container')` is true: `*` is any text (also none), `?` one
 * character (a UTF-16 code unit), everything else itself, case-sensitive, the whole text. The text between stars is
 * searched for leftmost, each part after the one before (the leftmost place never loses a match), by a bit-parallel
 * scan: each character of the text is read once per part, whatever the input, so a match takes at most
 * (text length × ⌈pattern length / 32⌉) word operations; `*` alone reads nothing.
 */
export function globMatches(pattern: string, text: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return text.length === pattern.length && partAt(pattern, text, 0);
  const first = parts[0];
  const last = parts[parts.length - 1];
  const end = text.length - last.length;
  if (first.length > end || !partAt(first, text, 0) || !partAt(last, text, end)) return false;
  let from = first.length;
  for (let i = 1; i < parts.length - 1; i++) {
    if (parts[i] === '') continue;
    const found = leftmost(parts[i], text, from, end);
    if (found === -1) return false;
    from = found + parts[i].length;
  }
  return true;
}

/** Whether `part` (no `*`) matches `text` at `at`. */
function partAt(part: string, text: string, at: number): boolean {
  for (let j = 0; j < part.length; j++) {
    if (part[j] !== '?' && part[j] !== text[at + j]) return false;
  }
  return true;
}

/**
 * Where `part` (no `*`, not empty) first matches wholly inside text[from, end), or -1: shift-and over words of 32
 * bits, bit j of the state saying that part[0..j] matches the text just read.
 */
function leftmost(part: string, text: string, from: number, end: number): number {
  const m = part.length;
  const words = (m + 31) >> 5;
  const any = new Uint32Array(words);
  for (let j = 0; j < m; j++) if (part[j] === '?') any[j >> 5] |= 1 << (j & 31);
  const masks = new Map<number, Uint32Array>();
  for (let j = 0; j < m; j++) {
    if (part[j] === '?') continue;
    const c = part.charCodeAt(j);
    let mask = masks.get(c);
    if (mask === undefined) masks.set(c, (mask = Uint32Array.from(any)));
    mask[j >> 5] |= 1 << (j & 31);
  }
  const state = new Uint32Array(words);
  const lastWord = (m - 1) >> 5;
  const lastBit = 1 << ((m - 1) & 31);
  for (let pos = from; pos < end; pos++) {
    const mask = masks.get(text.charCodeAt(pos)) ?? any;
    let carry = 1; // a match may start at every character
    for (let w = 0; w < words; w++) {
      const old = state[w];
      state[w] = ((old << 1) | carry) & mask[w];
      carry = old >>> 31;
    }
    if ((state[lastWord] & lastBit) !== 0) return pos - m + 1;
  }
  return -1;
}

/*
 * Regular expressions, matched in linear time.
 *
 * JavaScript's RegExp backtracks: `^Terminal(.|\s)*shell$` takes minutes on 31 characters, and no syntactic check
 * tells every such pattern apart. So a route's regular expression is compiled here, for a subset of the syntax, into
 * a Thompson NFA, and run by state-set simulation (Pike's VM without captures): each character of the text is looked
 * at once, against each state at most once, so a match takes at most (text length × states) steps whatever the
 * pattern and the text. Anything outside the subset is refused when the table is read, never tried.
 *
 * The subset, with the meaning JavaScript gives it without flags (UTF-16 code units, case-sensitive, `.` no line
 * terminator, `^` and `$` the ends of the text, unanchored search otherwise): literals, `.`, `\d \w \s \D \W \S`,
 * `\b \B`, `\t \n \r \f \v`, `\xHH`, `\uHHHH`, a backslash before any ASCII punctuation or space, classes `[...]` and
 * `[^...]` with ranges and those escapes, groups `(...)`, `(?:...)` and `(?<name>...)`, `|`, `* + ?` (lazy or
 * not: it changes what is captured, never whether the text matches), `{m}`, `{m,}` and `{m,n}` with counts up to
 * MAX_REPEAT_COUNT. Refused: backreferences, lookahead and lookbehind, flags and group modifiers, `\c`, `\p`, `\0`,
 * `[\b]` and unknown letter escapes, and patterns that would need more than MAX_PATTERN_STATES states.
 */

/** Largest count `{m,n}` may hold. */
export const MAX_REPEAT_COUNT = 100;

/**
 * Most states a compiled regular expression may have: a match takes at most (text length × this) steps, 2 to 8 s on
 * 1 MiB in the worst case measured (a DFA too large to cache, hundreds of states alive at every character:
 * `(?:.{0,9}.){1,25}!` on 1 MiB of all-different characters, 7.9 s on a loaded machine). 200 characters without counted
 * repeats make at most about 400; counted repeats multiply, `(?:[a-z]{0,100}){5}` would make 1,000.
 */
export const MAX_PATTERN_STATES = 500;

/** A set of UTF-16 code units as sorted, disjoint, non-adjacent inclusive ranges [lo0, hi0, lo1, hi1, …]. */
type Ranges = readonly number[];

const MAX_UNIT = 0xffff;

function normalized(ranges: readonly (readonly [number, number])[]): Ranges {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [lo, hi] of sorted) {
    if (out.length > 0 && lo <= out[out.length - 1] + 1) out[out.length - 1] = Math.max(out[out.length - 1], hi);
    else out.push(lo, hi);
  }
  return out;
}

function pairs(ranges: Ranges): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < ranges.length; i += 2) out.push([ranges[i], ranges[i + 1]]);
  return out;
}

function complement(ranges: Ranges): Ranges {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    if (ranges[i] > next) out.push(next, ranges[i] - 1);
    next = ranges[i + 1] + 1;
  }
  if (next <= MAX_UNIT) out.push(next, MAX_UNIT);
  return out;
}

const DIGIT: Ranges = [0x30, 0x39];
const WORD: Ranges = normalized([[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]]);
/** JavaScript's WhiteSpace and LineTerminator: what `\s` matches. */
const SPACE: Ranges = normalized(
  [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff].map((c) => [c, c] as [number, number]).concat([[0x2000, 0x200a]]),
);
/** `.`: every code unit but the line terminators. */
const DOT: Ranges = complement(normalized([[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]]));

const CLASS_ESCAPES: Readonly<Record<string, Ranges>> = {
  d: DIGIT,
  D: complement(DIGIT),
  w: WORD,
  W: complement(WORD),
  s: SPACE,
  S: complement(SPACE),
};

const CONTROL_ESCAPES: Readonly<Record<string, number>> = { t: 0x09, n: 0x0a, r: 0x0d, f: 0x0c, v: 0x0b };

type Assertion = 'start' | 'end' | 'boundary' | 'not-boundary';

type Node =
  | { readonly kind: 'set'; readonly ranges: Ranges }
  | { readonly kind: 'assert'; readonly assertion: Assertion }
  | { readonly kind: 'concat'; readonly items: readonly Node[] }
  | { readonly kind: 'alternation'; readonly items: readonly Node[] }
  | { readonly kind: 'repeat'; readonly item: Node; readonly min: number; readonly max: number };

/** Why a regular expression is refused: the construct, where it starts, and why it is outside the subset. */
export class UnsupportedPatternError extends Error {
  override readonly name = 'UnsupportedPatternError';
}

const isHex = (s: string) => /^[0-9A-Fa-f]+$/.test(s);

/**
 * A recursive-descent parser over the pattern (at most MAX_PATTERN_LENGTH characters, which JavaScript has already
 * accepted as a RegExp): it only has to tell the subset apart and never guesses at a meaning.
 */
class Parser {
  private i = 0;

  constructor(private readonly source: string) {}

  parse(): Node {
    const node = this.alternation();
    if (this.i < this.source.length) this.refuse(this.source[this.i], 'an unexpected character');
    return node;
  }

  private refuse(construct: string, what: string, at = this.i): never {
    throw new UnsupportedPatternError(`${what} ${JSON.stringify(construct)} at index ${at}`);
  }

  private peek(offset = 0): string | undefined {
    return this.source[this.i + offset];
  }

  private alternation(): Node {
    const items = [this.concatenation()];
    while (this.peek() === '|') {
      this.i++;
      items.push(this.concatenation());
    }
    return items.length === 1 ? items[0] : { kind: 'alternation', items };
  }

  private concatenation(): Node {
    const items: Node[] = [];
    while (this.i < this.source.length && this.peek() !== '|' && this.peek() !== ')') {
      const start = this.i;
      const atom = this.atom();
      items.push(this.quantified(atom, start));
    }
    return { kind: 'concat', items };
  }

  private quantified(atom: Node, start: number): Node {
    const ch = this.peek();
    let min: number;
    let max: number;
    const at = this.i;
    if (ch === '*' || ch === '+' || ch === '?') {
      this.i++;
      [min, max] = ch === '*' ? [0, Infinity] : ch === '+' ? [1, Infinity] : [0, 1];
    } else if (ch === '{') {
      const counted = /^\{(\d+)(,(\d*))?\}/.exec(this.source.slice(this.i));
      if (counted === null) return atom; // a literal '{', as JavaScript reads it
      this.i += counted[0].length;
      min = Number(counted[1]);
      max = counted[2] === undefined ? min : counted[3] === '' ? Infinity : Number(counted[3]);
      if (min > MAX_REPEAT_COUNT || (max !== Infinity && max > MAX_REPEAT_COUNT)) {
        this.refuse(counted[0], `a count above ${MAX_REPEAT_COUNT}`, at);
      }
    } else {
      return atom;
    }
    if (atom.kind === 'assert') this.refuse(this.source.slice(start, this.i), 'a quantified assertion', start);
    if (this.peek() === '?') this.i++; // lazy: the same set of matching texts
    return { kind: 'repeat', item: atom, min, max };
  }

  private atom(): Node {
    const at = this.i;
    const ch = this.source[this.i++];
    switch (ch) {
      case '^':
        return { kind: 'assert', assertion: 'start' };
      case '$':
        return { kind: 'assert', assertion: 'end' };
      case '.':
        return { kind: 'set', ranges: DOT };
      case '[':
        return { kind: 'set', ranges: this.characterClass() };
      case '(':
        return this.group(at);
      case '\\':
        return this.escape(at);
      case '*':
      case '+':
      case '?':
        return this.refuse(ch, 'a quantifier with nothing to repeat', at);
      default:
        return { kind: 'set', ranges: [ch.charCodeAt(0), ch.charCodeAt(0)] };
    }
  }

  private group(at: number): Node {
    if (this.peek() === '?') {
      const rest = this.source.slice(this.i, this.i + 3);
      if (rest.startsWith('?:')) this.i += 2;
      else if (rest.startsWith('?=') || rest.startsWith('?!')) this.refuse(`(${rest.slice(0, 2)}`, 'a lookahead', at);
      else if (rest === '?<=' || rest === '?<!') this.refuse(`(${rest}`, 'a lookbehind', at);
      else if (rest.startsWith('?<')) {
        const named = /^\?<[A-Za-z_$][A-Za-z0-9_$]*>/.exec(this.source.slice(this.i));
        if (named === null) this.refuse(`(${rest}`, 'a group name outside [A-Za-z_$][A-Za-z0-9_$]*', at);
        this.i += named[0].length;
      } else this.refuse(`(${rest.slice(0, 2)}`, 'a group modifier (flags)', at);
    }
    const inner = this.alternation();
    if (this.peek() !== ')') this.refuse('(', 'an unterminated group', at);
    this.i++;
    // Wrapped, so that a group holding only an assertion, `(?:^)*`, may be quantified as JavaScript allows.
    return { kind: 'concat', items: [inner] };
  }

  private escape(at: number): Node {
    const ch = this.source[this.i++];
    if (ch === undefined) return this.refuse('\\', 'a trailing backslash', at);
    if (ch === 'b') return { kind: 'assert', assertion: 'boundary' };
    if (ch === 'B') return { kind: 'assert', assertion: 'not-boundary' };
    if (ch in CLASS_ESCAPES) return { kind: 'set', ranges: CLASS_ESCAPES[ch] };
    const unit = this.characterEscape(ch, at);
    return { kind: 'set', ranges: [unit, unit] };
  }

  /** The code unit of an escape that stands for one character; anything else is refused. */
  private characterEscape(ch: string, at: number): number {
    if (ch in CONTROL_ESCAPES) return CONTROL_ESCAPES[ch];
    if (ch === 'x' || ch === 'u') {
      const digits = this.source.slice(this.i, this.i + (ch === 'x' ? 2 : 4));
      if (digits.length !== (ch === 'x' ? 2 : 4) || !isHex(digits)) this.refuse(`\\${ch}`, `a \\${ch} escape without ${ch === 'x' ? 2 : 4} hex digits`, at);
      this.i += digits.length;
      return parseInt(digits, 16);
    }
    if (/^[1-9]$/.test(ch) || ch === 'k') this.refuse(`\\${ch}`, 'a backreference', at);
    if (/^[ -/:-@[-`{-~]$/.test(ch)) return ch.charCodeAt(0); // ASCII punctuation or space, as itself
    return this.refuse(`\\${ch}`, 'an escape outside the supported syntax', at);
  }

  private characterClass(): Ranges {
    const at = this.i - 1;
    const negated = this.peek() === '^';
    if (negated) this.i++;
    const members: [number, number][] = [];
    while (this.peek() !== ']') {
      if (this.i >= this.source.length) this.refuse('[', 'an unterminated class', at);
      const from = this.i;
      const first = this.classAtom();
      if (this.peek() === '-' && this.peek(1) !== ']' && this.peek(1) !== undefined) {
        this.i++;
        const last = this.classAtom();
        const range = this.source.slice(from, this.i);
        if (typeof first !== 'number' || typeof last !== 'number') {
          // `[\w-z]`: JavaScript (without the u flag) reads the two ends and the '-' each as itself.
          for (const end of [first, 0x2d, last]) members.push(...(typeof end === 'number' ? [[end, end] as [number, number]] : pairs(end)));
          continue;
        }
        if (first > last) this.refuse(range, 'a range out of order', from);
        members.push([first, last]);
      } else if (typeof first === 'number') {
        members.push([first, first]);
      } else {
        members.push(...pairs(first));
      }
    }
    this.i++;
    const ranges = normalized(members);
    return negated ? complement(ranges) : ranges;
  }

  /** One code unit, or the set of a class escape. */
  private classAtom(): number | Ranges {
    const at = this.i;
    const ch = this.source[this.i++];
    if (ch !== '\\') return ch.charCodeAt(0);
    const next = this.source[this.i++];
    if (next === undefined) return this.refuse('\\', 'a trailing backslash', at);
    if (next in CLASS_ESCAPES) return CLASS_ESCAPES[next];
    if (next === 'b' || next === 'B') this.refuse(`\\${next}`, 'an escape outside the supported syntax', at);
    return this.characterEscape(next, at);
  }
}

/** How many states `node` compiles to (may be far above the cap: counts multiply). */
function stateCount(node: Node): number {
  switch (node.kind) {
    case 'set':
    case 'assert':
      return 1;
    case 'concat':
      return node.items.reduce((sum, item) => sum + stateCount(item), 0);
    case 'alternation':
      return node.items.reduce((sum, item) => sum + stateCount(item) + 2, 0);
    case 'repeat': {
      const one = stateCount(node.item);
      return node.min * one + (node.max === Infinity ? one + 2 : (node.max - node.min) * (one + 1));
    }
  }
}

const OP_SET = 0;
const OP_SPLIT = 1;
const OP_JUMP = 2;
const OP_ASSERT = 3;
const OP_MATCH = 4;

const ASSERTIONS: readonly Assertion[] = ['start', 'end', 'boundary', 'not-boundary'];

/** The compiled program: state `s` is `op[s]`, going to `next[s]` (and `alt[s]` for a split). */
interface Program {
  readonly op: Uint8Array;
  readonly next: Int32Array;
  readonly alt: Int32Array;
  /** For a set: bitmap of the ASCII code units; for an assertion: its index in ASSERTIONS. */
  readonly arg: Int32Array;
  readonly ascii: readonly Uint32Array[];
  readonly ranges: readonly Ranges[];
  readonly start: number;
  /** True when every path from the start passes `^` first: after the first character nothing can start a match. */
  readonly anchored: boolean;
}

function compile(root: Node, size: number): Program {
  const op = new Uint8Array(size + 1);
  const next = new Int32Array(size + 1).fill(-1);
  const alt = new Int32Array(size + 1).fill(-1);
  const arg = new Int32Array(size + 1);
  const ascii: Uint32Array[] = [];
  const ranges: Ranges[] = [];
  let count = 0;
  const state = (kind: number) => {
    op[count] = kind;
    return count++;
  };
  // Emits `node` so that it continues at `out`; returns its first state. Built from the end, so targets exist.
  const emit = (node: Node, out: number): number => {
    switch (node.kind) {
      case 'set': {
        const s = state(OP_SET);
        const bitmap = new Uint32Array(4);
        for (let i = 0; i < node.ranges.length; i += 2) {
          for (let c = node.ranges[i]; c <= Math.min(node.ranges[i + 1], 127); c++) bitmap[c >> 5] |= 1 << (c & 31);
        }
        arg[s] = ascii.length;
        ascii.push(bitmap);
        ranges.push(node.ranges);
        next[s] = out;
        return s;
      }
      case 'assert': {
        const s = state(OP_ASSERT);
        arg[s] = ASSERTIONS.indexOf(node.assertion);
        next[s] = out;
        return s;
      }
      case 'concat': {
        let first = out;
        for (let i = node.items.length - 1; i >= 0; i--) first = emit(node.items[i], first);
        return first;
      }
      case 'alternation': {
        const s = state(OP_SPLIT);
        const firsts = node.items.map((item) => {
          const join = state(OP_JUMP);
          next[join] = out;
          return emit(item, join);
        });
        // A chain of splits: s → firsts[0] | (s2 → firsts[1] | …)
        let tail = firsts[firsts.length - 1];
        for (let i = firsts.length - 2; i >= 1; i--) {
          const split = state(OP_SPLIT);
          next[split] = firsts[i];
          alt[split] = tail;
          tail = split;
        }
        next[s] = firsts[0];
        alt[s] = tail;
        return s;
      }
      case 'repeat': {
        let first = out;
        if (node.max === Infinity) {
          const loop = state(OP_SPLIT);
          const body = emit(node.item, loop);
          next[loop] = body;
          alt[loop] = out;
          first = loop;
        } else {
          for (let i = node.min; i < node.max; i++) {
            const split = state(OP_SPLIT);
            next[split] = emit(node.item, first);
            alt[split] = out;
            first = split;
          }
        }
        for (let i = 0; i < node.min; i++) first = emit(node.item, first);
        return first;
      }
    }
  };
  const match = state(OP_MATCH);
  const start = emit(root, match);
  return { op, next, alt, arg, ascii, ranges, start, anchored: anchoredAtStart(op, next, alt, arg, start) };
}

/** Whether no state that reads a character (or the match) can be reached from `start` without passing `^`. */
function anchoredAtStart(op: Uint8Array, next: Int32Array, alt: Int32Array, arg: Int32Array, start: number): boolean {
  const seen = new Set<number>();
  const stack = [start];
  while (stack.length > 0) {
    const s = stack.pop() as number;
    if (seen.has(s)) continue;
    seen.add(s);
    if (op[s] === OP_SET || op[s] === OP_MATCH) return false;
    if (op[s] === OP_ASSERT && ASSERTIONS[arg[s]] === 'start') continue;
    stack.push(next[s]);
    if (op[s] === OP_SPLIT) stack.push(alt[s]);
  }
  return true;
}

const isWordUnit = (c: number) => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f;

function holds(assertion: number, text: string, pos: number): boolean {
  switch (ASSERTIONS[assertion]) {
    case 'start':
      return pos === 0;
    case 'end':
      return pos === text.length;
    default: {
      const before = pos > 0 && isWordUnit(text.charCodeAt(pos - 1));
      const after = pos < text.length && isWordUnit(text.charCodeAt(pos));
      return (before !== after) === (ASSERTIONS[assertion] === 'boundary');
    }
  }
}

function inSet(program: Program, s: number, c: number): boolean {
  if (c < 128) return (program.ascii[program.arg[s]][c >> 5] & (1 << (c & 31))) !== 0;
  const ranges = program.ranges[program.arg[s]];
  for (let i = 0; i < ranges.length; i += 2) {
    if (c < ranges[i]) return false;
    if (c <= ranges[i + 1]) return true;
  }
  return false;
}

/** A state of the lazily built DFA: the NFA states alive after some text, and where each next character leads. */
interface DfaState {
  readonly alive: Int32Array;
  /** By `code unit × 3 + what follows it` (0 a non-word character, 1 a word character, 2 the end of the text). */
  readonly next: Map<number, DfaState>;
}

/** What the DFA cache may hold before it is emptied: it bounds the memory of each regular expression. */
const DFA_MAX_STATES = 1000;
const DFA_MAX_ALIVE = 50000;
const DFA_MAX_TRANSITIONS = 50000;
/** After this many emptyings (a pattern whose DFA is large, on text that explores it), the rest runs without it. */
const DFA_MAX_FLUSHES = 8;
/**
 * What the caches of all regular expressions together may hold (states alive plus transitions, as above): a table may
 * hold any number of expressions, and each cache at its own bounds is about 1.8 MiB. Past it, every cache is emptied.
 */
const DFA_SHARED_BUDGET = 150000;
/** The cost held by all caches, and the expressions holding some (emptied, and let go, when the budget is passed). */
let sharedCost = 0;
const holding = new Set<LinearRegExp>();

/** Reached the match state: no further step is needed. */
const MATCHED: DfaState = { alive: new Int32Array(0), next: new Map() };

/**
 * A regular expression of the supported subset, compiled: `test` answers as `new RegExp(source).test` would, in at
 * most (text length × states) steps. Build one with `compileLinearRegExp`.
 *
 * Each step of the state-set simulation is remembered (a lazy DFA, as RE2 does): the set of NFA states alive, the
 * character read and what follows it (for `\b` and `$`) give the next set, so text that revisits sets costs one map
 * lookup per character. The cache is bounded; past DFA_MAX_FLUSHES emptyings, the simulation goes on alone.
 */
export class LinearRegExp {
  /** Scratch space, reused by every `test` (JavaScript runs one at a time). */
  private readonly marks: Int32Array;
  private readonly current: Int32Array;
  private readonly following: Int32Array;
  private readonly stack: Int32Array;
  private generation = 0;
  private readonly dfa = new Map<string, DfaState>();
  private dfaAlive = 0;
  private dfaTransitions = 0;

  constructor(
    readonly source: string,
    private readonly program: Program,
  ) {
    const size = program.op.length;
    this.marks = new Int32Array(size);
    this.current = new Int32Array(size);
    this.following = new Int32Array(size);
    // One closure expands each state once, and an expanded state pushes at most two others: at most 2 × states + 1.
    this.stack = new Int32Array(2 * size + 2);
  }

  /** The number of states: the factor of the text length in the time `test` may take. */
  get states(): number {
    return this.program.op.length;
  }

  test(text: string): boolean {
    if (this.generation > 0x3fffffff - text.length - 2) {
      this.marks.fill(0);
      this.generation = 0;
    }
    this.generation++;
    const count = this.closure(this.program.start, text, 0, this.current, 0);
    if (count < 0) return true;
    let state = this.intern(this.current, count);
    let flushes = 0;
    for (let pos = 0; pos < text.length; pos++) {
      const c = text.charCodeAt(pos);
      const after = pos + 1 === text.length ? 2 : isWordUnit(text.charCodeAt(pos + 1)) ? 1 : 0;
      const key = c * 3 + after;
      let next = state.next.get(key);
      if (next === undefined) {
        if (sharedCost >= DFA_SHARED_BUDGET) LinearRegExp.forgetAll();
        else if (this.dfa.size >= DFA_MAX_STATES || this.dfaAlive >= DFA_MAX_ALIVE || this.dfaTransitions >= DFA_MAX_TRANSITIONS) this.forget();
        if (this.dfa.size === 0) {
          if (++flushes > DFA_MAX_FLUSHES) return this.simulate(text, pos, state.alive);
          state = this.intern(state.alive, state.alive.length);
        }
        this.generation++;
        const found = this.step(state.alive, state.alive.length, text, pos, this.current);
        next = found < 0 ? MATCHED : this.intern(this.current, found);
        state.next.set(key, next);
        this.dfaTransitions++;
        sharedCost++;
      }
      if (next === MATCHED) return true;
      if (this.program.anchored && next.alive.length === 0) return false;
      state = next;
    }
    return false;
  }

  /** The DFA state for the `count` NFA states in `list`, made when new. */
  private intern(list: Int32Array, count: number): DfaState {
    const alive = list.slice(0, count).sort();
    const key = alive.join(',');
    let state = this.dfa.get(key);
    if (state === undefined) {
      state = { alive, next: new Map() };
      this.dfa.set(key, state);
      this.dfaAlive += count;
      sharedCost += count;
      holding.add(this);
    }
    return state;
  }

  /** Empties this expression's cache, and gives back its part of the shared budget. */
  private forget(): void {
    sharedCost -= this.dfaAlive + this.dfaTransitions;
    this.dfa.clear();
    this.dfaAlive = 0;
    this.dfaTransitions = 0;
    holding.delete(this);
  }

  /** Empties every cache: also those of expressions no longer used (a table read again), which are then let go. */
  private static forgetAll(): void {
    for (const regex of holding) regex.forget();
    sharedCost = 0;
  }

  /** The state-set simulation alone, from `pos` with the NFA states `alive`. */
  private simulate(text: string, pos: number, alive: Int32Array): boolean {
    let list = this.current;
    let other = this.following;
    list.set(alive);
    let count = alive.length;
    for (; pos < text.length; pos++) {
      this.generation++;
      const found = this.step(list, count, text, pos, other);
      if (found < 0) return true;
      if (this.program.anchored && found === 0) return false;
      count = found;
      [list, other] = [other, list];
    }
    return false;
  }

  /**
   * Reads text[pos] from the `count` NFA states of `list` (which `out` must not be): the states alive after it, in
   * `out`, and their count, or -1 when the match state is reached.
   */
  private step(list: Int32Array, count: number, text: string, pos: number, out: Int32Array): number {
    const p = this.program;
    const c = text.charCodeAt(pos);
    let found = 0;
    for (let k = 0; k < count; k++) {
      const s = list[k];
      if (!inSet(p, s, c)) continue;
      const t = p.next[s];
      if (p.op[t] === OP_SET) {
        // The common case (a literal after a literal) without the closure's stack.
        if (this.marks[t] !== this.generation) {
          this.marks[t] = this.generation;
          out[found++] = t;
        }
      } else {
        found = this.closure(t, text, pos + 1, out, found);
        if (found < 0) return -1;
      }
    }
    // Unanchored: a match may also start after this character.
    return p.anchored ? found : this.closure(p.start, text, pos + 1, out, found);
  }

  /**
   * Adds to `list` (holding `count` states) every set state reachable from `from` at `pos` without reading a
   * character; the new count, or -1 when the match state is reachable.
   */
  private closure(from: number, text: string, pos: number, list: Int32Array, count: number): number {
    const p = this.program;
    const stack = this.stack;
    const gen = this.generation; // starts at 1: the marks' initial 0 is never a live generation
    let top = 0;
    stack[top++] = from;
    while (top > 0) {
      const s = stack[--top];
      if (this.marks[s] === gen) continue;
      this.marks[s] = gen;
      switch (p.op[s]) {
        case OP_SET:
          list[count++] = s;
          break;
        case OP_MATCH:
          return -1;
        case OP_SPLIT:
          if (this.marks[p.alt[s]] !== gen) stack[top++] = p.alt[s];
          if (this.marks[p.next[s]] !== gen) stack[top++] = p.next[s];
          break;
        case OP_JUMP:
          if (this.marks[p.next[s]] !== gen) stack[top++] = p.next[s];
          break;
        case OP_ASSERT:
          if (holds(p.arg[s], text, pos) && this.marks[p.next[s]] !== gen) stack[top++] = p.next[s];
          break;
      }
    }
    return count;
  }
}

export type CompiledPattern = { readonly ok: true; readonly regex: LinearRegExp } | { readonly ok: false; readonly problem: string };

/**
 * Compiles a regular expression that JavaScript accepts (check that first, for its own message) into a LinearRegExp,
 * or says what is outside the supported subset: `compileLinearRegExp('(a)\\1')` fails with
 * `a backreference "\\1" at index 3`.
 */
export function compileLinearRegExp(source: string): CompiledPattern {
  let root: Node;
  try {
    root = new Parser(source).parse();
  } catch (error) {
    if (error instanceof UnsupportedPatternError) return { ok: false, problem: error.message };
    throw error;
  }
  const size = stateCount(root);
  if (size > MAX_PATTERN_STATES) {
    return { ok: false, problem: `counted repeats that make ${size > 1e9 ? 'over a billion' : size} states (at most ${MAX_PATTERN_STATES})` };
  }
  return { ok: true, regex: new LinearRegExp(source, compile(root, size)) };
}
