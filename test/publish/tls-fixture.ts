// Throwaway certificates for the HTTPS tests, made with the openssl CLI in a temporary
// directory: a test CA, a server certificate for 127.0.0.1 and a client certificate it signs,
// and a second CA that signed neither (the wrong one).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestTls {
  dir: string;
  /** File names in `dir` and their PEM content. */
  files: { ca: string; server: string; serverKey: string; client: string; clientKey: string; otherCa: string };
  pem(name: keyof TestTls['files']): string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=podvisor test ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}

function makeLeaf(dir: string, name: string, cn: string, extensions: string): void {
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
}

export function makeTestTls(dir: string): TestTls {
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  makeLeaf(dir, 'server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  makeLeaf(dir, 'client', 'system:node:edge-1', 'extendedKeyUsage=clientAuth\n');
  const files = { ca: 'ca.crt', server: 'server.crt', serverKey: 'server.key', client: 'client.crt', clientKey: 'client.key', otherCa: 'other-ca.crt' };
  return { dir, files, pem: (name) => readFileSync(join(dir, files[name]), 'utf8') };
}
