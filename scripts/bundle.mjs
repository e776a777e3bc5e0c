// Bundles the built agent into one file, dist/podvisor.mjs: what `podvisor` runs (npm start, the
// package, the installer, the end-to-end tests). One file of production code loads faster and
// holds less memory than the module graph it comes from (idle RSS with 20 pods: bench/RESULTS.md).
// Minified whole: keeping the names costs 2.4 MB of RSS. Stack traces then name positions in the
// bundle; its source map, dist/podvisor.mjs.map, turns them back into src/ lines when the agent is
// run with `node --enable-source-maps` (and costs nothing when it is not).
//   node scripts/bundle.mjs [--outfile FILE] [--metafile FILE] [--version VERSION]
// --outfile elsewhere than dist/ is how the package is built without touching the dist/ that
// running tests use; --metafile writes esbuild's record of the modules bundled (the package's
// copyright file lists their licences from it); --version stamps another version than
// package.json's (the installer's tests make releases of several versions).
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { outfile: { type: 'string' }, metafile: { type: 'string' }, version: { type: 'string' } } });
const outfile = values.outfile ? resolve(values.outfile) : join(root, 'dist', 'podvisor.mjs');
const version = values.version ?? JSON.parse(await readFile(join(root, 'package.json'), 'utf8')).version;

/**
 * Node's http, https and http2 taken as the CommonJS objects they are, when the module that uses
 * them is first run. An ES import of a built-in makes Node build the module's whole namespace,
 * and on Node 22 and later that reads http's lazy WebSocket getters, which load undici (fetch)
 * at start-up: 3.6 MB of RSS the agent never uses (bench/RESULTS.md, 2026-12-04).
 */
const builtinsAsCommonJs = {
  name: 'builtins-as-commonjs',
  setup(build) {
    build.onResolve({ filter: /^(node:)?(http|https|http2)$/ }, (args) => {
      if (args.namespace === 'builtin-cjs') return { path: args.path, external: true };
      if (args.kind !== 'import-statement') return undefined;
      return { path: args.path, namespace: 'builtin-cjs' };
    });
    build.onLoad({ filter: /.*/, namespace: 'builtin-cjs' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/**
 * zod's locales but English, the only one podvisor speaks: the namespace `z` holds them all, so
 * nothing else keeps them out of the bundle (265 KB of it, 0.7 MB of RSS).
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /\/locales\/index\.js$/ }, (args) => (/[\\/]zod[\\/]/.test(args.importer) ? { path: join(dirname(args.importer), args.path.replace(/index\.js$/, 'en.js')), namespace: 'zod-locales' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({ contents: `export { default as en } from ${JSON.stringify(args.path)};`, loader: 'js', resolveDir: dirname(args.path) }));
  },
};

const result = await build({
  entryPoints: [join(root, 'src', 'cli.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'eof',
  logLevel: 'warning',
  metafile: values.metafile !== undefined,
  plugins: [builtinsAsCommonJs, zodEnglishOnly],
  // The version is part of the bundle: installed, it has no package.json beside it (src/version.ts).
  define: { __PODVISOR_VERSION__: JSON.stringify(version) },
  // CommonJS dependencies (winston's) call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __podvisorRequire } from 'node:module'; const require = __podvisorRequire(import.meta.url);" },
});
await chmod(outfile, 0o755);
if (values.metafile) await writeFile(values.metafile, JSON.stringify(result.metafile));
