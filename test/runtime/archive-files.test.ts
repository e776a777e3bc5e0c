// The rules for the images directory's files, as tables: which names are archives (and how they
// are compressed), when a file is complete enough to load, and what podman load's output names.
import t from 'tap';
import { archiveCompression, loadedImages, readiness, type FileFacts } from '../../src/runtime/archive-files.js';

t.test('archive names and their compression; leftovers and dotfiles are not archives', async (t) => {
  const table: [string, string | undefined][] = [
    ['app.tar', 'none'],
    ['App.TAR', 'none'],
    ['app.tar.gz', 'gzip'],
    ['app.tgz', 'gzip'],
    ['app.tar.zst', 'zstd'],
    ['app.tar.zstd', 'zstd'],
    ['.app.tar', undefined],
    ['.app.tar.Xa3f9', undefined],
    ['app.tar.part', undefined],
    ['app.tar.tmp', undefined],
    ['app.tar~', undefined],
    ['app.tar.gz.crdownload', undefined],
    ['app.tar.dpkg-new', undefined],
    ['.tar', undefined],
    ['app.zip', undefined],
    ['app.tar.xz', undefined],
    ['app.yaml', undefined],
  ];
  for (const [name, want] of table) t.equal(archiveCompression(name), want, name);
});

/** A stat as readiness() reads it. */
function info(facts: Partial<FileFacts> & { isFile?: boolean } = {}) {
  const { isFile = true, ...rest } = facts;
  const all: FileFacts = { size: 1000, mtimeMs: 5000, ctimeMs: 5000, ino: 7, ...rest };
  return { ...all, isFile: () => isFile };
}

t.test('a file is complete when renamed in, or unchanged for the settle period between two looks', async (t) => {
  const settle = 2000;
  const facts = { size: 1000, mtimeMs: 5000, ctimeMs: 5000, ino: 7 };
  t.same(readiness(info({ ctimeMs: 5001 }), undefined, 0, settle), { kind: 'ready' }, 'renamed in (change time past modification time): at once');
  t.same(readiness(info(), undefined, 100_000, settle), { kind: 'wait', inMs: settle }, 'first look at a file written in place: wait a settle period, however old its mtime');
  t.same(readiness(info(), { facts, at: 10_000 }, 10_500, settle), { kind: 'wait', inMs: 1500 }, 'unchanged, not yet for long enough: wait the rest');
  t.same(readiness(info(), { facts, at: 10_000 }, 12_000, settle), { kind: 'ready' }, 'unchanged for the settle period: complete');
  t.same(readiness(info({ size: 2000, mtimeMs: 6000, ctimeMs: 6000 }), { facts, at: 10_000 }, 20_000, settle), { kind: 'wait', inMs: settle }, 'grown since the last look: wait again');
  t.same(readiness(info({ ino: 8 }), { facts, at: 10_000 }, 20_000, settle), { kind: 'wait', inMs: settle }, 'another file at the name: wait again');
  t.same(readiness(info({ mtimeMs: 1000, ctimeMs: 1000 }), { facts: { ...facts, mtimeMs: 1000, ctimeMs: 1000 }, at: 10_000 }, 12_000, settle), { kind: 'ready' }, 'a modification time in the past (cp -p) does not matter: the looks do');
  t.same(readiness(info({ mtimeMs: 9e12, ctimeMs: 9e12 }), { facts: { ...facts, mtimeMs: 9e12, ctimeMs: 9e12 }, at: 10_000 }, 12_000, settle), { kind: 'ready' }, 'nor one in the future (a skewed clock)');
  t.same(readiness(info({ size: 0 }), { facts: { ...facts, size: 0 }, at: 10_000 }, 12_000, settle), { kind: 'empty' }, 'empty and unchanged: nothing to load');
  t.same(readiness(info({ size: 0, ctimeMs: 5001 }), undefined, 0, settle), { kind: 'wait', inMs: settle }, 'an empty file is never taken as renamed in (a writer may chmod first)');
});

t.test("podman load's output: the image names it printed", async (t) => {
  t.same(loadedImages('Loaded image: localhost/app:1.0'), ['localhost/app:1.0']);
  t.same(loadedImages('Getting image source signatures\nCopying blob 3d5f\nWriting manifest to image destination\nLoaded image(s): localhost/a:1,localhost/b:2\n'), ['localhost/a:1', 'localhost/b:2']);
  t.same(loadedImages('Loaded image: localhost/a:1\nLoaded image: localhost/b:2\nLoaded image: localhost/a:1'), ['localhost/a:1', 'localhost/b:2'], 'one line an image (podman 4), each once');
  t.same(loadedImages('Loaded image: sha256:0123abcd'), ['sha256:0123abcd'], 'an image without a name is named by its id');
  t.same(loadedImages(''), []);
});
