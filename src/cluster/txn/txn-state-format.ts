import { ByteWriter, readVersioned } from "../../io/format/bytes.ts";
import type { Lock, TxnState } from "./percolator.ts";
import { count, readMutation, writeMutation } from "./txn-command-format.ts";

/**
 * A partition's transaction state as its checkpoints carry it (the transactions frame of a
 * replicated checkpoint, src/storage/checkpoint/checkpoint-format.ts). Frozen, version 1; integers
 * are varints, strings u32 length · UTF-8 (txn-command-format.ts):
 *
 *   u8 version · varint n · n × lock · varint f · f × (varint startTs · varint commitTs, 0: rolled back)
 *   lock   varint startTs · string primary · varint expiresAtMs · the key and what its commit
 *          writes, as one mutation of a command (kind 4, a put with a TTL, carries the key's deadline)
 */
const VERSION = 1;

export function encodeTxnState(state: TxnState): Uint8Array {
  const w = new ByteWriter(64);
  w.u8(VERSION).varint(state.locks.length);
  for (const [key, lock] of state.locks) {
    w.varint(lock.startTs).string(lock.primary).varint(lock.expiresAtMs);
    writeMutation(w, { key, value: lock.value, ...ttlOf(lock) });
  }
  w.varint(state.fates.length);
  for (const [startTs, commitTs] of state.fates) w.varint(startTs).varint(commitTs);
  return w.written();
}

export function decodeTxnState(bytes: Uint8Array): TxnState {
  return readVersioned(bytes, VERSION, "a partition's transaction state", (r) => {
    const locks = Array.from({ length: count(r, 7) }, (): [string, Lock] => {
      const startTs = r.varint();
      const primary = r.string();
      const expiresAtMs = r.varint();
      const { key, value, expiresAtMs: keyExpiresAtMs } = readMutation(r);
      const ttl = keyExpiresAtMs === undefined ? {} : { keyExpiresAtMs };
      return [key, { startTs, primary, value, expiresAtMs, ...ttl }];
    });
    const fates = Array.from({ length: count(r, 2) }, (): [number, number] => [r.varint(), r.varint()]);
    return { locks, fates };
  });
}

const ttlOf = (lock: Lock) => (lock.keyExpiresAtMs === undefined ? {} : { expiresAtMs: lock.keyExpiresAtMs });
