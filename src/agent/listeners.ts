// The agent's parts are built in the order data flows, so a part made early cannot name one made
// later. Where something early must tell something later (podman's calls to the metrics, the
// prober to the pod workers, the status owner to the mirror pods), it tells a Listeners list,
// and the later part adds itself to the list once it exists: wiring in order, nothing late-bound.

export class Listeners<Args extends unknown[]> {
  readonly #listeners: ((...args: Args) => void)[] = [];

  /** Adds a listener, told of everything emitted from now on; returns what removes it again. */
  add(listener: (...args: Args) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      const at = this.#listeners.indexOf(listener);
      if (at >= 0) this.#listeners.splice(at, 1);
    };
  }

  /** Tells every listener, in the order they were added. */
  readonly emit = (...args: Args): void => {
    for (const listener of this.#listeners) listener(...args);
  };
}
