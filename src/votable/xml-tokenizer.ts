// A small streaming XML tokenizer: elements, attributes, text, entities, CDATA, comments,
// processing instructions and a DOCTYPE (skipped). Enough XML for VOTable, checked for
// well-formedness (matching tags, one root, quoted attributes, known entities).
//
// Bytes are held as latin1 strings (one char per byte), so offsets in the text are byte
// offsets in the file; text and attribute values are decoded from UTF-8 when handed out.

/** Receives the tokens, in document order. Names are local (any "prefix:" removed). */
export interface XmlHandler {
  start(name: string, attrs: Record<string, string>, selfClosing: boolean, offset: number): void;
  end(name: string, offset: number): void;
  /** Character data (entities and CDATA resolved); may come in several pieces. */
  text(text: string, offset: number): void;
}

/** Malformed XML: `offset` is the byte offset in the input where the problem is. */
export class XmlSyntaxError extends Error {
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(message);
    this.offset = offset;
  }
}

/** Options of {@link XmlTokenizer}. */
export interface XmlTokenizerOptions {
  /** Start inside these open elements (local names, outermost first): resume a document mid-way. */
  readonly openElements?: readonly string[];
  /** Absolute byte offset of the first byte fed (when resuming mid-way). */
  readonly startOffset?: number;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

// A token (text, tag, comment) longer than this means a broken document, not a big one.
const MAX_TOKEN_BYTES = 1 << 28;

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

function isNameStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 58 || c >= 128;
}

function localName(name: string): string {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(i + 1);
}

/**
 * Feeds bytes in, calls the handler for each complete token. Incomplete tokens at the end
 * of a chunk wait for the next one. `stop()` (from a handler) ends tokenizing at once.
 */
export class XmlTokenizer {
  readonly #handler: XmlHandler;
  #buf = '';
  #pos = 0;
  #base: number;
  readonly #stack: string[];
  #rootSeen: boolean;
  #rootClosed = false;
  #stopped = false;
  #latin1 = false;
  #bomChecked: boolean;
  readonly #fragment: boolean;
  /** When true, character data is not decoded nor handed out (fast skipping). */
  skipText = false;

  constructor(handler: XmlHandler, options: XmlTokenizerOptions = {}) {
    this.#handler = handler;
    this.#stack = [...(options.openElements ?? [])];
    this.#fragment = this.#stack.length > 0;
    this.#rootSeen = this.#fragment;
    this.#base = options.startOffset ?? 0;
    this.#bomChecked = this.#fragment;
  }

  /** True once `stop()` was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Ends tokenizing (called from a handler); the rest of the input is ignored. */
  stop(): void {
    this.#stopped = true;
  }

  /** The byte offset just after the last token handed out. */
  get offset(): number {
    return this.#base + this.#pos;
  }

  /** The open elements, outermost first. */
  get openElements(): readonly string[] {
    return this.#stack;
  }

  /** Tokenizes a chunk of bytes. */
  feed(chunk: Uint8Array): void {
    if (this.#stopped) return;
    const text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1');
    this.#base += this.#pos;
    if (this.#buf.length - this.#pos > MAX_TOKEN_BYTES) {
      throw new XmlSyntaxError(`no end in sight for the token starting here after ${MAX_TOKEN_BYTES >> 20} MiB: a tag, comment or CDATA section is not closed`, this.#base);
    }
    this.#buf = this.#buf.slice(this.#pos) + text;
    this.#pos = 0;
    if (!this.#bomChecked) {
      // a byte-order mark may come split over chunks: wait for three bytes
      const b = this.#buf;
      if (b.length < 3 && ('\xef\xbb\xbf'.startsWith(b) || '\xff\xfe'.startsWith(b) || '\xfe\xff'.startsWith(b))) return;
      this.#bomChecked = true;
      if (b.startsWith('\xff\xfe') || b.startsWith('\xfe\xff')) throw new XmlSyntaxError('the document is UTF-16; save it as UTF-8', 0);
      if (b.startsWith('\xef\xbb\xbf')) this.#pos = 3;
    }
    this.#run(false);
  }

  /** Ends the input: everything left must be complete, and the root element closed. */
  finish(): void {
    if (this.#stopped) return;
    this.#run(true);
    if (this.#stopped) return;
    if (!this.#fragment && !this.#rootSeen) throw new XmlSyntaxError('no root element: the document is empty or not XML', this.offset);
    if (this.#stack.length > 0) {
      throw new XmlSyntaxError(`the document ends inside <${this.#stack[this.#stack.length - 1]}>: the file is truncated or a closing tag is missing`, this.offset);
    }
  }

  #decode(raw: string): string {
    // eslint-disable-next-line no-control-regex
    if (!this.#latin1 && /[^\x00-\x7f]/.test(raw)) raw = Buffer.from(raw, 'latin1').toString('utf8');
    if (raw.indexOf('&') < 0) return raw;
    return raw.replace(/&([^;&<\s]*);?/g, (whole, name: string) => {
      if (!whole.endsWith(';')) throw new XmlSyntaxError(`"&${name}" is not an entity: write a literal & as &amp;`, this.offset);
      if (name.startsWith('#')) {
        const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
        if (!Number.isInteger(code) || code < 1 || code > 0x10ffff || !/^#(x[0-9a-fA-F]+|[0-9]+)$/i.test(name)) {
          throw new XmlSyntaxError(`"&${name};" is not a valid character reference`, this.offset);
        }
        return String.fromCodePoint(code);
      }
      const e = ENTITIES[name];
      if (e === undefined) throw new XmlSyntaxError(`unknown entity "&${name};" (XML knows &lt; &gt; &amp; &quot; &apos; and &#...;)`, this.offset);
      return e;
    });
  }

  #text(s: string, from: number, to: number): void {
    if (from === to) return;
    if (this.#stack.length === 0) {
      for (let i = from; i < to; i++) {
        if (!isSpace(s.charCodeAt(i))) throw new XmlSyntaxError(`text outside the root element: "${s.slice(i, Math.min(to, i + 20))}"`, this.#base + i);
      }
      return;
    }
    if (this.skipText) return;
    this.#handler.text(this.#decode(s.slice(from, to)), this.#base + from);
  }

  #run(final: boolean): void {
    const s = this.#buf;
    const n = s.length;
    let p = this.#pos;
    while (p < n && !this.#stopped) {
      if (s.charCodeAt(p) !== 60) {
        let q = s.indexOf('<', p);
        if (q < 0) {
          if (!final) break;
          q = n;
        }
        this.#text(s, p, q);
        p = q;
        continue;
      }
      this.#pos = p;
      const next = this.#markup(s, p, final);
      if (next < 0) break;
      p = next;
    }
    this.#pos = p;
  }

  // One markup construct at s[p] === '<'; returns the position after it, or -1 to wait for more.
  #markup(s: string, p: number, final: boolean): number {
    const n = s.length;
    const need = (what: string, at: number) => {
      if (final) throw new XmlSyntaxError(`the document ends inside ${what}`, this.#base + at);
      return -1;
    };
    if (p + 1 >= n) return need('a tag', p);
    const c1 = s.charCodeAt(p + 1);
    if (c1 === 33) { // <!
      if (n - p < 9 && !final && !s.includes('>', p)) return -1;
      if (s.startsWith('<!--', p)) {
        const q = s.indexOf('-->', p + 4);
        if (q < 0) return need('a comment', p);
        return q + 3;
      }
      if (s.startsWith('<![CDATA[', p)) {
        const q = s.indexOf(']]>', p + 9);
        if (q < 0) return need('a CDATA section', p);
        if (this.#stack.length === 0) throw new XmlSyntaxError('CDATA outside the root element', this.#base + p);
        if (!this.skipText) {
          let raw = s.slice(p + 9, q);
          // eslint-disable-next-line no-control-regex
          if (!this.#latin1 && /[^\x00-\x7f]/.test(raw)) raw = Buffer.from(raw, 'latin1').toString('utf8');
          this.#handler.text(raw, this.#base + p);
        }
        return q + 3;
      }
      if (s.startsWith('<!DOCTYPE', p)) {
        // skip, with any internal subset in [...]
        let depth = 0;
        for (let i = p + 9; i < n; i++) {
          const c = s.charCodeAt(i);
          if (c === 91) depth++;
          else if (c === 93) depth--;
          else if (c === 62 && depth <= 0) return i + 1;
        }
        return need('a DOCTYPE', p);
      }
      throw new XmlSyntaxError(`unexpected "${s.slice(p, p + 10)}"`, this.#base + p);
    }
    if (c1 === 63) { // <?
      const q = s.indexOf('?>', p + 2);
      if (q < 0) return need('a processing instruction', p);
      const body = s.slice(p + 2, q);
      if (/^xml\s/.test(body)) {
        const enc = /encoding\s*=\s*["']([^"']+)["']/.exec(body)?.[1]?.toLowerCase();
        if (enc === 'iso-8859-1' || enc === 'latin1' || enc === 'latin-1') this.#latin1 = true;
        else if (enc !== undefined && enc !== 'utf-8' && enc !== 'utf8' && enc !== 'us-ascii' && enc !== 'ascii') {
          throw new XmlSyntaxError(`encoding "${enc}" is not supported; save the file as UTF-8`, this.#base + p);
        }
      }
      return q + 2;
    }
    if (c1 === 47) { // </
      const q = s.indexOf('>', p + 2);
      if (q < 0) return need('a closing tag', p);
      const name = s.slice(p + 2, q).trim();
      const local = localName(name);
      const open = this.#stack[this.#stack.length - 1];
      if (open === undefined) throw new XmlSyntaxError(`closing tag </${name}> without an open element`, this.#base + p);
      if (open !== local) throw new XmlSyntaxError(`closing tag </${name}> does not match the open <${open}>`, this.#base + p);
      this.#stack.pop();
      if (this.#stack.length === 0 && !this.#fragment) this.#rootClosed = true;
      this.#handler.end(local, this.#base + p);
      return q + 1;
    }
    return this.#startTag(s, p, final);
  }

  #startTag(s: string, p: number, final: boolean): number {
    const n = s.length;
    let i = p + 1;
    if (!isNameStart(s.charCodeAt(i))) throw new XmlSyntaxError(`"<" must start a tag name (write a literal < as &lt;)`, this.#base + p);
    while (i < n) {
      const c = s.charCodeAt(i);
      if (isSpace(c) || c === 62 || c === 47) break;
      i++;
    }
    if (i >= n) return final ? this.#fail('a tag', p) : -1;
    const name = s.slice(p + 1, i);
    const attrs: Record<string, string> = {};
    for (;;) {
      while (i < n && isSpace(s.charCodeAt(i))) i++;
      if (i >= n) return final ? this.#fail('a tag', p) : -1;
      const c = s.charCodeAt(i);
      let selfClosing = false;
      if (c === 47) {
        if (i + 1 >= n) return final ? this.#fail('a tag', p) : -1;
        if (s.charCodeAt(i + 1) !== 62) throw new XmlSyntaxError(`<${name}>: "/" must be followed by ">"`, this.#base + i);
        selfClosing = true;
        i++;
      }
      if (selfClosing || c === 62) {
        const local = localName(name);
        if (this.#stack.length === 0) {
          if (this.#rootClosed || (this.#rootSeen && !this.#fragment)) throw new XmlSyntaxError(`a second root element <${name}>: a document has one root`, this.#base + p);
          this.#rootSeen = true;
        }
        if (!selfClosing) this.#stack.push(local);
        else if (this.#stack.length === 0 && !this.#fragment) this.#rootClosed = true;
        this.#handler.start(local, attrs, selfClosing, this.#base + p);
        if (selfClosing && !this.#stopped) this.#handler.end(local, this.#base + p);
        return i + 1;
      }
      // an attribute: name = "value"
      const a0 = i;
      while (i < n) {
        const d = s.charCodeAt(i);
        if (d === 61 || isSpace(d) || d === 62 || d === 47) break;
        i++;
      }
      if (i >= n) return final ? this.#fail('a tag', p) : -1;
      const attr = s.slice(a0, i);
      while (i < n && isSpace(s.charCodeAt(i))) i++;
      if (i >= n) return final ? this.#fail('a tag', p) : -1;
      if (s.charCodeAt(i) !== 61) throw new XmlSyntaxError(`<${name}>: attribute "${attr}" has no value (write ${attr}="...")`, this.#base + i);
      i++;
      while (i < n && isSpace(s.charCodeAt(i))) i++;
      if (i >= n) return final ? this.#fail('a tag', p) : -1;
      const quote = s.charCodeAt(i);
      if (quote !== 34 && quote !== 39) throw new XmlSyntaxError(`<${name}>: the value of "${attr}" must be in quotes`, this.#base + i);
      const close = s.indexOf(quote === 34 ? '"' : "'", i + 1);
      if (close < 0) return final ? this.#fail('an attribute value', p) : -1;
      const raw = s.slice(i + 1, close);
      if (raw.includes('<')) throw new XmlSyntaxError(`<${name}>: the value of "${attr}" holds "<" (write &lt;)`, this.#base + i);
      if (Object.hasOwn(attrs, attr)) throw new XmlSyntaxError(`<${name}>: attribute "${attr}" is given twice`, this.#base + a0);
      attrs[attr] = this.#decode(raw.replace(/[\t\n\r]/g, ' '));
      i = close + 1;
      if (i < n) {
        const d = s.charCodeAt(i);
        if (!isSpace(d) && d !== 62 && d !== 47) throw new XmlSyntaxError(`<${name}>: attributes must be separated by spaces`, this.#base + i);
      }
    }
  }

  #fail(what: string, at: number): never {
    throw new XmlSyntaxError(`the document ends inside ${what}`, this.#base + at);
  }
}
