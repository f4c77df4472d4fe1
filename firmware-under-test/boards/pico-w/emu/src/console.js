// CONSOLE.md's line grammar, read from the file itself: every table row whose first cell is a
// code span is a line pattern. Placeholders become regular expressions:
//   <a\|b\|c>   one of the listed words (`...` in the list admits any word)
//   <ver>       major.minor.patch
//   <n>, <k>, <max>, <bytes>, <ms>   a decimal number
//   <why> after `: ` at the end of a line   free text (`app: v<ver> crash: <why>`)
//   anything else   one word without spaces (fields carry no spaces)
import { readFileSync } from 'node:fs';

const NUMBER = new Set(['n', 'k', 'max', 'bytes', 'ms']);

export class Grammar {
  constructor(path) {
    this.path = path;
    this.rules = [];
    const text = readFileSync(path, 'utf8');
    text.split('\n').forEach((row, i) => {
      const m = /^\|\s*`((?:[^`])+)`\s*\|/.exec(row);
      if (!m) return;
      const pattern = m[1].replaceAll('\\|', '|');
      this.rules.push({ pattern, line: i + 1, regex: compile(pattern) });
    });
    if (this.rules.length < 20) {
      throw new Error(`${path}: found ${this.rules.length} console line patterns in its tables; expected the full protocol`);
    }
  }

  /** The CONSOLE.md pattern `line` matches, or null. */
  match(line) {
    return this.rules.find((r) => r.regex.test(line)) ?? null;
  }
}

function compile(pattern) {
  let re = '^';
  let rest = pattern;
  while (rest.length) {
    const at = rest.indexOf('<');
    if (at < 0) {
      re += escape(rest);
      break;
    }
    re += escape(rest.slice(0, at));
    const end = rest.indexOf('>', at);
    if (end < 0) throw new Error(`CONSOLE.md pattern ${pattern}: unclosed <`);
    const name = rest.slice(at + 1, end);
    const before = rest.slice(0, at);
    rest = rest.slice(end + 1);
    re += placeholder(name, before.endsWith(': ') && rest === '');
  }
  return new RegExp(`${re}$`);
}

function placeholder(name, freeText) {
  if (name.includes('|')) {
    const words = name.split('|');
    if (words.includes('...')) return '\\S+';
    return `(?:${words.map(escape).join('|')})`;
  }
  if (name === 'ver') return '\\d+\\.\\d+\\.\\d+';
  if (NUMBER.has(name)) return '\\d+';
  if (freeText) return '.+';
  return '\\S+';
}

function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
