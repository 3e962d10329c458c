import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XmlSyntaxError, XmlTokenizer, type XmlHandler } from './xml-tokenizer.ts';

// Tokens as readable strings: "<A x=1>", "</A>", "'text'".
function tokenize(input: string | Uint8Array, chunk = Infinity): string[] {
  const out: string[] = [];
  const handler: XmlHandler = {
    start(name, attrs, selfClosing) {
      const a = Object.entries(attrs).map(([k, v]) => ` ${k}=${JSON.stringify(v)}`).join('');
      out.push(`<${name}${a}${selfClosing ? '/' : ''}>`);
    },
    end(name) {
      out.push(`</${name}>`);
    },
    text(text) {
      // adjacent pieces are one text
      const last = out[out.length - 1];
      if (last?.startsWith("'")) out[out.length - 1] = `'${last.slice(1, -1)}${text}'`;
      else out.push(`'${text}'`);
    },
  };
  const t = new XmlTokenizer(handler);
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  for (let i = 0; i < bytes.length; i += chunk === Infinity ? bytes.length : chunk) t.feed(bytes.subarray(i, Math.min(bytes.length, i + (chunk === Infinity ? bytes.length : chunk))));
  t.finish();
  return out.filter((s) => !/^'\s*'$/.test(s));
}

const doc = `\ufeff<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE VOTABLE [ <!ENTITY x "y"> ]>
<!-- a comment with <tags> -->
<vot:VOTABLE xmlns:vot="http://www.ivoa.net/xml/VOTable/v1.3" version='1.4'>
  <DESCRIPTION>a &lt;b&gt; &amp; c &#65;&#x42; ünï 日本</DESCRIPTION>
  <PARAM name="p" value="1 &quot;2&quot;&#10;3"/>
  <TD><![CDATA[<not a tag> & raw]]></TD>
</vot:VOTABLE>
<!-- trailing comment -->
`;

const expected = [
  '<VOTABLE xmlns:vot="http://www.ivoa.net/xml/VOTable/v1.3" version="1.4">',
  '<DESCRIPTION>', "'a <b> & c AB ünï 日本'", '</DESCRIPTION>',
  '<PARAM name="p" value="1 \\"2\\"\\n3"/>', '</PARAM>',
  '<TD>', "'<not a tag> & raw'", '</TD>',
  '</VOTABLE>',
];

test('tokens: elements, attributes, entities, character references, CDATA, comments, DOCTYPE, BOM', () => {
  assert.deepEqual(tokenize(doc), expected);
});

test('the same tokens whatever the chunk boundaries (even inside multi-byte characters)', () => {
  for (const chunk of [1, 2, 3, 7, 64]) assert.deepEqual(tokenize(doc, chunk), expected, `chunk ${chunk}`);
});

test('malformed XML is an XmlSyntaxError with the byte offset of the problem', () => {
  const bad = (text: string, pattern: RegExp, offset?: number) => {
    assert.throws(() => tokenize(text), (e: unknown) => {
      assert.ok(e instanceof XmlSyntaxError, String(e));
      assert.match(e.message, pattern);
      if (offset !== undefined) assert.equal(e.offset, offset);
      return true;
    });
  };
  bad('<A><B></A>', /closing tag <\/A> does not match the open <B>/, 6);
  bad('<A><B></B>', /ends inside <A>/);
  bad('<A>x &nbsp; y</A>', /unknown entity "&nbsp;"/);
  bad('<A>fish & chips</A>', /not an entity/);
  bad('<A/><B/>', /a second root element <B>/);
  bad('hello <A/>', /text outside the root element/);
  bad('<A x=1/>', /must be in quotes/);
  bad('<A x="1" x="2"/>', /given twice/);
  bad('<A x="a<b"/>', /holds "<"/);
  bad('<A><!-- never closed </A>', /ends inside a comment/);
  bad('<A>&#xZZ;</A>', /not a valid character reference/);
  bad('', /no root element/);
  bad('<A x="1"y="2"/>', /separated by spaces/);
  bad('<?xml version="1.0" encoding="UTF-16"?><A/>', /encoding "utf-16" is not supported/);
});

test('resumes mid-document inside given open elements, and stops when told', () => {
  const seen: string[] = [];
  const t = new XmlTokenizer({
    start: (name) => seen.push(name),
    end: (name) => {
      seen.push(`/${name}`);
      if (name === 'TABLEDATA') t.stop();
    },
    text: () => {},
  }, { openElements: ['VOTABLE', 'RESOURCE', 'TABLE', 'DATA'], startOffset: 1000 });
  t.feed(Buffer.from('<TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA><BROKEN'));
  assert.deepEqual(seen, ['TABLEDATA', 'TR', 'TD', '/TD', '/TR', '/TABLEDATA']);
  assert.ok(t.stopped);
  assert.equal(t.offset, 1000 + '<TABLEDATA><TR><TD>1</TD></TR></TABLEDATA>'.length);
});

test('skipText hands out no character data', () => {
  const texts: string[] = [];
  const t = new XmlTokenizer({ start: () => {}, end: () => {}, text: (x) => texts.push(x) });
  t.skipText = true;
  t.feed(Buffer.from('<A>one<![CDATA[two]]></A>'));
  t.finish();
  assert.deepEqual(texts, []);
});
