// Parses mermaid files with mermaid's own parser, as GitHub's renderer does before drawing:
// `node check-mermaid.mjs FILE...` exits 1 and names the file when one does not parse.
// Needs the npm packages mermaid and jsdom (NODE_PATH, or a node_modules beside this file).
import { JSDOM } from 'jsdom';
import fs from 'fs';

const dom = new JSDOM('<!DOCTYPE html><body></body>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

let failed = false;
for (const file of process.argv.slice(2)) {
  try {
    const parsed = await mermaid.parse(fs.readFileSync(file, 'utf8'));
    if (!parsed || !String(parsed.diagramType).startsWith('flowchart')) {
      throw new Error(`not a flowchart: ${parsed && parsed.diagramType}`);
    }
  } catch (e) {
    failed = true;
    console.error(`${file}: ${e.message || e}`);
  }
}
process.exit(failed ? 1 : 0);
