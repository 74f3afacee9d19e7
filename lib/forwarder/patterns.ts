/**
 * The two pattern forms a route may use on rule names and namespaces. Both come from the operator, but the text
 * they are matched against comes from the alert, so each is built to stay cheap on any input.
 */

/** Longest glob or regular expression a routing table may hold. */
export const MAX_PATTERN_LENGTH = 200;

/**
 * `globMatches('Launch * Container', 'Launch Privileged Container')` is true: `*` is any text (also none), `?` one
 * character, everything else itself, case-sensitive, the whole text. A loop rather than a regular expression: it takes
 * at most (text × pattern) steps whatever the input, where `.*a.*a.*a…` would backtrack.
 */
export function globMatches(pattern: string, text: string): boolean {
  let p = 0;
  let s = 0;
  let star = -1;
  let resume = 0;
  while (s < text.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[s])) {
      p++;
      s++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = s;
    } else if (star !== -1) {
      p = star + 1;
      s = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * A quantified group that itself holds a quantifier, as in `(a+)+` or `(x*y)*`: the shape that makes a backtracking
 * engine take exponential time. A cheap syntactic check, not a proof of safety: overlapping alternatives such as
 * `(a|a)*` still pass, which is why patterns are also length-capped and only tried on rule names of bounded length.
 */
export function hasNestedQuantifier(source: string): boolean {
  const groups: boolean[] = []; // for each open group: does it hold a quantifier?
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      continue;
    }
    if (ch === '[') inClass = true;
    else if (ch === '(') groups.push(false);
    else if (ch === ')') {
      const heldQuantifier = groups.pop() ?? false;
      const next = source[i + 1];
      const quantified = next === '*' || next === '+' || next === '{';
      if (heldQuantifier && quantified) return true;
      if (heldQuantifier || quantified) markQuantified(groups);
    } else if (ch === '*' || ch === '+' || ch === '{') {
      markQuantified(groups);
    }
  }
  return false;
}

function markQuantified(groups: boolean[]): void {
  if (groups.length > 0) groups[groups.length - 1] = true;
}
