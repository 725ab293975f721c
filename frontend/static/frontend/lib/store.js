// JSON values in localStorage (or any object with getItem/setItem/removeItem, for tests).
// A full or disabled storage is not an error: the page still works, without what it would keep.

export function jsonStore(backend = () => globalThis.localStorage) {
  const storage = typeof backend === "function" ? backend : () => backend;
  return {
    get(key) {
      try {
        return JSON.parse(storage().getItem(key));
      } catch {
        return null;
      }
    },
    set(key, value) {
      try {
        storage().setItem(key, JSON.stringify(value));
      } catch {
        /* storage full or disabled */
      }
    },
    del(key) {
      try {
        storage().removeItem(key);
      } catch {
        /* ignore */
      }
    },
  };
}

/** A Map-backed stand-in for localStorage (tests, or a page that must not persist). */
export function memoryStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => void m.set(k, String(v)),
    removeItem: (k) => void m.delete(k),
    get length() {
      return m.size;
    },
  };
}
