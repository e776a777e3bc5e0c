// Real Pod manifests from public projects (kubernetes website examples, kubeadm, kube-vip): each
// is accepted, refused for a stated reason, or a known real defect. The counts are hard-coded so
// that a change in what podvisor accepts shows up here.
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { isManifestName } from '../../src/manifest/directory-source.js';
import { loadManifestFile } from '../../src/manifest/load-file.js';
import { formatFinding } from '../../src/manifest/validate.js';

// The corpus lives in the repository (its sources and licences in SOURCES.md beside it).
const CORPUS = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/corpus/real-pods');

/** Files with real defects, and the error each must give (every one of its errors matches). */
const KNOWN_DEFECTS: Record<string, RegExp> = {
  // The probe's key is `gRPC`, not `grpc`: the probe has no handler at all.
  'k8s-website__pods__probe__grpc-liveness.yaml': /^spec\.containers\[0\]\.livenessProbe: must have exactly one handler: exec, httpGet, tcpSocket or grpc$/,
};

const EXPECTED_FILES = 98;
const EXPECTED_ACCEPTED_FILES = 75;
const EXPECTED_ACCEPTED_PODS = 76;
const EXPECTED_REFUSED_FILES = 22;

t.test('every real manifest is accepted, refused with a reason, or a known defect', async (t) => {
  const names = readdirSync(CORPUS).filter(isManifestName).sort();
  t.equal(names.length, EXPECTED_FILES, 'manifests in the corpus');
  let acceptedFiles = 0;
  let acceptedPods = 0;
  let refusedFiles = 0;
  const defects: string[] = [];
  for (const name of names) {
    const result = await loadManifestFile(join(CORPUS, name), { nodeName: 'node1', displayName: name });
    const errors = result.findings.filter((finding) => finding.severity === 'error');
    t.equal(result.hasErrors, errors.length > 0, `${name}: hasErrors agrees with the findings`);
    if (errors.length === 0) {
      acceptedFiles += 1;
      acceptedPods += result.pods.length;
      t.ok(result.pods.length > 0, `${name}: accepted files hold pods`);
      continue;
    }
    t.same(result.pods, [], `${name}: a file with errors here has no pod`);
    const defect = KNOWN_DEFECTS[name];
    if (defect) {
      defects.push(name);
      for (const error of errors) t.match(`${error.field}: ${error.message}`, defect, `${name}: ${formatFinding(error)}`);
      continue;
    }
    refusedFiles += 1;
    for (const error of errors) {
      t.match(error.message, /^refused: /, formatFinding(error));
      t.match(error.field, /^(spec|metadata)\.[A-Za-z]/, `${formatFinding(error)}: names a field path`);
    }
  }
  t.same(defects, Object.keys(KNOWN_DEFECTS), 'every known defect is still found');
  t.equal(acceptedFiles, EXPECTED_ACCEPTED_FILES, 'accepted files');
  t.equal(acceptedPods, EXPECTED_ACCEPTED_PODS, 'accepted pods');
  t.equal(refusedFiles, EXPECTED_REFUSED_FILES, 'refused files');
});

t.test('the grpc-liveness defect also gets the case-sensitivity hint, findings in file order', async (t) => {
  const result = await loadManifestFile(join(CORPUS, 'k8s-website__pods__probe__grpc-liveness.yaml'), { nodeName: 'node1', displayName: 'grpc-liveness.yaml' });
  t.same(result.findings.map(formatFinding), [
    'grpc-liveness.yaml:12:5: spec.containers[0].livenessProbe: must have exactly one handler: exec, httpGet, tcpSocket or grpc',
    'grpc-liveness.yaml:13:7: warning: spec.containers[0].livenessProbe.gRPC: ignored: unknown field (field names are case-sensitive: did you mean "grpc"?)',
  ]);
});

t.test('kubeadm control-plane manifests are accepted as they are', async (t) => {
  for (const name of ['kubeadm__etcd.yaml', 'kubeadm__kube-apiserver.yaml', 'kubeadm__kube-controller-manager.yaml', 'kubeadm__kube-scheduler.yaml']) {
    const result = await loadManifestFile(join(CORPUS, name), { nodeName: 'cp1', displayName: name });
    t.same(result.findings.filter((finding) => finding.severity === 'error'), [], name);
    t.equal(result.pods.length, 1, name);
    t.equal(result.pods[0]?.namespace, 'kube-system', name);
  }
});
