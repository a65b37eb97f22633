/**
 * An ordered map from strings to values: a B+ tree, so that an insert costs O(log n) and a walk
 * from any key runs either way through linked leaves. Keys compare with the native `<`, which for
 * the memtable's sort keys (key-bytes.ts: one UTF-16 unit per byte) is the keys' byte order.
 *
 *   insert c, a, e, b, d with NODE_MAX 4:   leaf [a b c e] → overflows at d, splits in two:
 *                 branch [c]
 *                /         \
 *        leaf [a b]  ⇄  leaf [c d e]        (⇄: prev/next links; a walk never climbs the tree)
 *
 * Nothing is ever removed: the memtable keeps a key whose versions were all collected (it may be
 * written again) until the whole memtable goes, after its flush. No write happens during a walk
 * (the store's reads run to completion within a call; a frozen memtable is never written).
 */
const NODE_MAX = 64;

interface Leaf<T> {
  readonly leaf: true;
  keys: string[];
  values: T[];
  prev: Leaf<T> | undefined;
  next: Leaf<T> | undefined;
}

interface Branch<T> {
  readonly leaf: false;
  /** keys[i] is the smallest key under children[i + 1]. */
  keys: string[];
  children: TreeNode<T>[];
}

type TreeNode<T> = Leaf<T> | Branch<T>;

/** The first index whose key is ≥ `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (keys[middle]! < key) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The first index whose key is > `key`: the child of a branch that holds `key`. */
function upperBound(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (keys[middle]! <= key) low = middle + 1;
    else high = middle;
  }
  return low;
}

export class KeyTree<T> {
  private root: TreeNode<T> = { leaf: true, keys: [], values: [], prev: undefined, next: undefined };
  private count = 0;

  constructor(private readonly nodeMax = NODE_MAX) {}

  get size(): number {
    return this.count;
  }

  get(key: string): T | undefined {
    const leaf = this.leafFor(key);
    const at = lowerBound(leaf.keys, key);
    return leaf.keys[at] === key ? leaf.values[at] : undefined;
  }

  /** The value of `key`; `create`'s when the key is new (inserted). */
  upsert(key: string, create: () => T): T {
    const path: { branch: Branch<T>; child: number }[] = [];
    let node = this.root;
    while (!node.leaf) {
      const child = upperBound(node.keys, key);
      path.push({ branch: node, child });
      node = node.children[child]!;
    }
    const at = lowerBound(node.keys, key);
    if (node.keys[at] === key) return node.values[at]!;
    const value = create();
    node.keys.splice(at, 0, key);
    node.values.splice(at, 0, value);
    this.count++;
    this.splitUp(node, path);
    return value;
  }

  /**
   * Values of the keys in [low, high) (a missing bound is open), ascending, or descending when
   * `reverse`.
   */
  *range(low?: string, high?: string, reverse = false): Generator<T> {
    if (reverse) {
      let leaf: Leaf<T> | undefined = high === undefined ? this.edge(true) : this.leafFor(high);
      let i = high === undefined ? leaf.keys.length - 1 : lowerBound(leaf.keys, high) - 1;
      while (leaf) {
        for (; i >= 0; i--) {
          if (low !== undefined && leaf.keys[i]! < low) return;
          yield leaf.values[i]!;
        }
        leaf = leaf.prev;
        i = (leaf?.keys.length ?? 0) - 1;
      }
      return;
    }
    let leaf: Leaf<T> | undefined = low === undefined ? this.edge(false) : this.leafFor(low);
    let i = low === undefined ? 0 : lowerBound(leaf.keys, low);
    while (leaf) {
      for (; i < leaf.keys.length; i++) {
        if (high !== undefined && leaf.keys[i]! >= high) return;
        yield leaf.values[i]!;
      }
      leaf = leaf.next;
      i = 0;
    }
  }

  private leafFor(key: string): Leaf<T> {
    let node = this.root;
    while (!node.leaf) node = node.children[upperBound(node.keys, key)]!;
    return node;
  }

  /** The first leaf, or the last. */
  private edge(last: boolean): Leaf<T> {
    let node = this.root;
    while (!node.leaf) node = node.children[last ? node.children.length - 1 : 0]!;
    return node;
  }

  /** Splits `node` if it overflowed, and each branch on `path` (root first) the split overflows in turn. */
  private splitUp(node: TreeNode<T>, path: { branch: Branch<T>; child: number }[]): void {
    let full = node;
    for (let level = path.length; full.keys.length > this.nodeMax; level--) {
      const { right, separator } = full.leaf ? this.splitLeaf(full) : this.splitBranch(full);
      if (level === 0) {
        this.root = { leaf: false, keys: [separator], children: [full, right] };
        return;
      }
      const { branch, child } = path[level - 1]!;
      branch.keys.splice(child, 0, separator);
      branch.children.splice(child + 1, 0, right);
      full = branch;
    }
  }

  private splitLeaf(leaf: Leaf<T>): { right: Leaf<T>; separator: string } {
    const half = leaf.keys.length >> 1;
    const right: Leaf<T> = {
      leaf: true,
      keys: leaf.keys.splice(half),
      values: leaf.values.splice(half),
      prev: leaf,
      next: leaf.next,
    };
    if (leaf.next) leaf.next.prev = right;
    leaf.next = right;
    return { right, separator: right.keys[0]! };
  }

  private splitBranch(branch: Branch<T>): { right: Branch<T>; separator: string } {
    const half = branch.keys.length >> 1;
    // The middle key moves up: it separates the two halves and belongs to neither.
    const separator = branch.keys[half]!;
    const right: Branch<T> = {
      leaf: false,
      keys: branch.keys.splice(half + 1),
      children: branch.children.splice(half + 1),
    };
    branch.keys.length = half;
    return { right, separator };
  }
}
