// Parses docs/asyncapi.yaml with @asyncapi/parser; exits 1 on any error
// (warnings and hints are counted, not fatal). Used by `make check`.
import { Parser } from '@asyncapi/parser';
import fs from 'fs';

const file = process.argv[2] || 'docs/asyncapi.yaml';
const { document, diagnostics } = await new Parser().parse(fs.readFileSync(file, 'utf8'));
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  const kind = ['error', 'warning', 'info', 'hint'][d.severity];
  console.log(`${kind} ${d.code} at ${d.path.join('.')}: ${d.message}`);
}
console.log(`${file}: ${errors.length} errors, ${diagnostics.length - errors.length} warnings/hints`);
process.exit(errors.length || !document ? 1 : 0);
