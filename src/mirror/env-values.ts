// Env values are left out of what podvisor shows (the API, the publishers, `podvisor status` and
// `describe`): a manifest's `env[].value` is where a device's passwords and tokens are, and the
// kubelet's read-only port never was a place for them. The names stay, so a reader still sees
// which variables a container gets; `valueFrom` stays as it is, since it names where a value
// comes from and holds none. `--serve-env-values true` (or
// `serve-env-values: true` in the config file) serves them.

/** What a left-out value reads as. */
export const REDACTED_ENV_VALUE = '(redacted)';

interface EnvHolder {
  env?: { value?: string }[] | undefined;
}

interface PodWithContainers {
  spec: { containers: EnvHolder[]; initContainers?: EnvHolder[] | undefined };
}

/** The containers' env with every `value` replaced by the marker; the pod is not changed, a copy is returned. */
export function withoutEnvValues<T extends PodWithContainers>(pod: T): T {
  const redact = <C extends EnvHolder>(container: C): C =>
    container.env?.some((variable) => variable.value !== undefined)
      ? { ...container, env: container.env.map((variable) => (variable.value === undefined ? variable : { ...variable, value: REDACTED_ENV_VALUE })) }
      : container;
  const { spec } = pod;
  return {
    ...pod,
    spec: {
      ...spec,
      containers: spec.containers.map(redact),
      ...(spec.initContainers ? { initContainers: spec.initContainers.map(redact) } : {}),
    },
  };
}
