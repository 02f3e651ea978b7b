/** A listener of one event of map M. */
export type Listener<M, K extends keyof M> = (value: M[K]) => void;

/**
 * A small typed event emitter. A listener that throws does not stop the others; the error
 * is reported through onListenerError (console.error by default).
 */
export class Emitter<M> {
  private readonly listeners = new Map<keyof M, Set<(value: never) => void>>();

  constructor(private readonly onListenerError: (err: unknown) => void = (err) => console.error(err)) {}

  /** Adds a listener and returns the function that removes it. */
  on<K extends keyof M>(name: K, listener: Listener<M, K>): () => void {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener as (value: never) => void);
    return () => this.off(name, listener);
  }

  /** Removes a listener added with on. */
  off<K extends keyof M>(name: K, listener: Listener<M, K>): void {
    this.listeners.get(name)?.delete(listener as (value: never) => void);
  }

  /** Calls every listener of name with value, in the order they were added. */
  emit<K extends keyof M>(name: K, value: M[K]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const l of [...set]) {
      try {
        (l as Listener<M, K>)(value);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
