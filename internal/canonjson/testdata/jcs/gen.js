// gen.js writes the golden files of TestCanonicalAgainstNode and TestES6Numbers:
// JSON documents and doubles, with what a JavaScript engine (an independent
// implementation of the ECMAScript number formatting and UTF-16 key order that
// RFC 8785 builds on) gives as their canonical form. Run from this directory:
//
//	node gen.js
//
// The generator is seeded, so a rerun reproduces the files.
"use strict";
const fs = require("fs");

let seed = 20250301;
function rand() { // mulberry32
  seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

// The canonical form per RFC 8785: JSON.stringify already writes ES6 numbers and
// JCS string escapes; only the key order (UTF-16 code units, JS's default sort)
// has to be added.
function jcs(v) {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(jcs).join(",") + "]";
  return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + jcs(v[k])).join(",") + "}";
}

const view = new DataView(new ArrayBuffer(8));
function randomDouble() {
  switch (Math.floor(rand() * 4)) {
    case 0: // any finite bit pattern
      for (;;) {
        view.setUint32(0, Math.floor(rand() * 4294967296));
        view.setUint32(4, Math.floor(rand() * 4294967296));
        const f = view.getFloat64(0);
        if (Number.isFinite(f)) return f;
      }
    case 1: return (rand() - 0.5) * Math.pow(10, Math.floor(rand() * 50) - 25);
    case 2: return Math.round((rand() - 0.5) * 1e6) / 1000; // survey-like decimals
    default: return (rand() - 0.5) * 360; // coordinates
  }
}

// Number spellings that all mean the same double but are not canonical.
function spellNumber(f) {
  if (Number.isSafeInteger(f) && rand() < 0.5) return String(f);
  return pick([
    () => f.toExponential(),
    () => f.toPrecision(21),
    () => f.toExponential(19).replace("e", "E"),
    () => (Object.is(f, -0) ? "-0.0" : String(f).includes("e") ? String(f) : String(f) + (String(f).includes(".") ? "000" : ".0")),
  ])();
}

const keyChars = ["a", "b", "z", "A", "é", "ö", "\u0080", "€", "\ufb33", "\uffff", "\ud83d\ude00", "\u{10000}", "日", "\r", "\n", "\u001f", "\"", "\\", "/", "~", " ", "1"];
const strChars = keyChars.concat(["\u0000", "\b", "\t", "\u007f", "\u2028", "\u2029", "\ud800\udc00", "x", "y"]);
function randomString(chars, max) {
  let s = "";
  for (let n = Math.floor(rand() * max); n > 0; n--) s += pick(chars);
  return s;
}

// spell writes v as non-canonical JSON: random spacing, escapes, key order.
function spell(v) {
  const ws = () => pick(["", "", " ", "\n", "\t", " \r\n "]);
  if (v === null || typeof v === "boolean") return ws() + String(v) + ws();
  if (typeof v === "number") return ws() + spellNumber(v) + ws();
  if (typeof v === "string") return ws() + spellString(v) + ws();
  if (Array.isArray(v)) return ws() + "[" + v.map(spell).join(",") + "]" + ws();
  const keys = Object.keys(v);
  for (let i = keys.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [keys[i], keys[j]] = [keys[j], keys[i]];
  }
  return ws() + "{" + keys.map((k) => ws() + spellString(k) + ws() + ":" + spell(v[k])).join(",") + "}" + ws();
}
function spellString(s) {
  let out = "\"";
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === "\"" || ch === "\\") out += "\\" + ch;
    else if (c < 0x20 || rand() < 0.2) {
      for (let i = 0; i < ch.length; i++) {
        const u = ch.charCodeAt(i).toString(16).padStart(4, "0");
        out += "\\u" + (rand() < 0.5 ? u : u.toUpperCase());
      }
    } else if (ch === "/" && rand() < 0.5) out += "\\/";
    else out += ch;
  }
  return out + "\"";
}

function randomValue(depth) {
  switch (Math.floor(rand() * (depth > 3 ? 5 : 7))) {
    case 0: return null;
    case 1: return rand() < 0.5;
    case 2: return randomDouble();
    case 3: return Math.floor((rand() - 0.5) * 2 * Number.MAX_SAFE_INTEGER);
    case 4: return randomString(strChars, 8);
    case 5: return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(depth + 1));
    default: return randomObject(depth);
  }
}

function randomObject(depth) {
  const o = {};
  for (let n = Math.floor(rand() * 6); n > 0; n--) o[randomString(keyChars, 3)] = randomValue(depth + 1);
  return o;
}

const docs = [];
for (let i = 0; i < 300; i++) {
  const v = i % 5 === 0 ? randomValue(0) : randomObject(0);
  docs.push(JSON.stringify([spell(v), jcs(v)]));
}
fs.writeFileSync("documents.jsonl", docs.join("\n") + "\n");

const nums = [];
for (let i = 0; i < 1000; i++) {
  const f = randomDouble();
  view.setFloat64(0, f);
  const bits = view.getBigUint64(0).toString(16).padStart(16, "0");
  nums.push(bits + " " + String(f));
}
fs.writeFileSync("numbers.txt", nums.join("\n") + "\n");
