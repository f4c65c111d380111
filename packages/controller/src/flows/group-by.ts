// Grouping rows by a key (a host, a VM) in one pass: each group in the order its first item came, items in order.

/** `items` grouped by `key`; each item is pushed onto its group, never copied with it. */
export function groupBy<T, K>(items: Iterable<T>, key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const at = key(item);
    const group = groups.get(at);
    if (group === undefined) groups.set(at, [item]);
    else group.push(item);
  }
  return groups;
}
