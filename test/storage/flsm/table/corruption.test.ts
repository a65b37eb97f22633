import { beforeEach, describe, expect, test } from "bun:test";
import { isHomeKvError } from "../../../../src/errors.ts";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import type { Entry } from "../../../../src/storage/flsm/entry.ts";
import { BlockCache } from "../../../../src/storage/flsm/table/block-cache.ts";
import { TableReader } from "../../../../src/storage/flsm/table/reader.ts";
import { bytes } from "../../../helpers/bytes.ts";
import { FOOTER_BYTES, framed, type IndexedBlock, indexOf, rebuilt, type StoredBlock, sections } from "./forged.ts";
import { writeTable } from "./tables.ts";

/**
 * One test per way a table breaks (DESIGN.md, convention 5). Where each part lies is read from the
 * footer as the format documents it (forged.ts), so these tests also hold the layout to its word.
 */
const PATH = "t/7.sst";
const entries: Entry[] = Array.from({ length: 200 }, (_, i) => ({
  key: bytes(`key-${String(i).padStart(4, "0")}`),
  revision: i + 1,
  value: bytes(`value ${i}`),
  createRevision: i + 1,
  version: 1,
  ...(i % 10 === 0 ? { expiresAtMs: 1_700_000_000_000 + i } : {}),
}));

let fs: MemoryFileSystem;
let table: Uint8Array;

function damaged(change: (file: Uint8Array) => Uint8Array): void {
  fs.overwrite(PATH, change(table.slice()));
}

function flip(offset: number): (file: Uint8Array) => Uint8Array {
  return (file) => {
    file[offset] = (file[offset] as number) ^ 0x10;
    return file;
  };
}

/** What `run` throws: E_CORRUPT naming the file and the damaged byte offset. */
async function expectCorrupt(run: () => unknown, offset: number, reason: RegExp): Promise<void> {
  let thrown: unknown;
  try {
    await run();
  } catch (error) {
    thrown = error;
  }
  expect(isHomeKvError(thrown, "E_CORRUPT")).toBe(true);
  const { message } = thrown as Error;
  expect(message).toContain(`${PATH} is damaged at byte offset ${offset}:`);
  expect(message).toMatch(reason);
}

const open = () => TableReader.open(fs, PATH, new BlockCache(1 << 20));

beforeEach(async () => {
  fs = new MemoryFileSystem();
  await fs.mkdirp("t");
  await writeTable(fs, PATH, entries, { blockBytes: 256 });
  table = fs.bytes(PATH).slice();
});

describe("a damaged table raises E_CORRUPT naming the file and the offset", () => {
  test("a flipped byte in a data block, when that block is read; the other blocks still read", async () => {
    const { offset: blockAt, rawSize } = blockOf(table, bytes("key-0100"));
    expect(blockAt).toBeGreaterThan(8);
    expect(rawSize).toBeGreaterThan(0); // stored compressed: its own CRC names the damage
    damaged(flip(blockAt + 3));
    const reader = await open();
    expect(reader.get(bytes("key-0000"), 200)?.value).toEqual(bytes("value 0"));
    const reason = /a compressed data block fails its checksum/;
    await expectCorrupt(() => reader.get(bytes("key-0100"), 200), blockAt, reason);
    await expectCorrupt(() => [...reader.entries({})], blockAt, reason);
    await expectCorrupt(() => [...reader.entries({}, true)], blockAt, reason);
  });

  test("a flipped byte in a data block stored as built", async () => {
    await fs.remove(PATH);
    await writeTable(fs, PATH, entries, { blockBytes: 256, compression: "none" });
    table = fs.bytes(PATH).slice();
    const { offset: blockAt, rawSize } = blockOf(table, bytes("key-0100"));
    expect(rawSize).toBe(0);
    damaged(flip(blockAt + 3));
    const reader = await open();
    expect(reader.get(bytes("key-0000"), 200)?.value).toEqual(bytes("value 0"));
    await expectCorrupt(() => reader.get(bytes("key-0100"), 200), blockAt, /^.*: a data block fails its checksum/);
  });

  test("a compressed block whose checksum holds but zstd refuses (a reserved bit of its frame set)", async () => {
    const target = blockOf(table, bytes("key-0100"));
    damaged((file) =>
      rebuilt(file, (block, i) => {
        if (indexOf(file)[i]!.offset !== target.offset) return block;
        const frame = block.bytes.slice(0, -4);
        frame[4] = (frame[4] as number) | 0x08; // the frame header descriptor's reserved bit
        return { ...block, bytes: framed(frame) };
      }),
    );
    const reader = await open();
    const reason = /compressed data block does not decompress/;
    await expectCorrupt(() => reader.get(bytes("key-0100"), 200), target.offset, reason);
  });

  test("a compressed block whose frame declares another size than its index says", async () => {
    const target = blockOf(table, bytes("key-0100"));
    damaged((file) =>
      rebuilt(file, (block, i) =>
        indexOf(file)[i]!.offset === target.offset ? { ...block, rawSize: block.rawSize - 1 } : block,
      ),
    );
    const reader = await open();
    await expectCorrupt(
      () => reader.get(bytes("key-0100"), 200),
      target.offset,
      new RegExp(`frame declares ${target.rawSize} bytes, not the ${target.rawSize - 1} its index says`),
    );
  });

  test("a compressed block that would decompress past its index's size is refused before zstd runs (a zip bomb)", async () => {
    // Forged, every CRC good: a frame of 64 MiB of zeros is some 2 KB. Bun.zstdDecompressSync
    // allocates what a frame declares, or grows without bound when it declares nothing.
    const bomb = Bun.zstdCompressSync(new Uint8Array(64 * 1024 * 1024), { level: 1 });
    // Its header: descriptor 0x80 (a 4-byte content size, a window descriptor, no checksum), the window, the size.
    expect([...bomb.subarray(4, 6)]).toEqual([0x80, 0x48]);
    const undeclared = Buffer.concat([bomb.subarray(0, 4), Uint8Array.of(0x00, 0x48), bomb.subarray(10)]);
    const target = blockOf(table, bytes("key-0100"));
    const own = table.subarray(target.offset, target.offset + target.size - 4);
    const unframed = /not one zstd frame that declares its size/;
    const cases: [Uint8Array, RegExp][] = [
      [bomb, new RegExp(`frame declares ${64 * 1024 * 1024} bytes, not the ${target.rawSize} its index says`)],
      [undeclared, unframed],
      // The block's own frame, then another: Bun decompresses every frame there is.
      [Buffer.concat([own, bomb]), unframed],
      [Buffer.concat([own, Uint8Array.of(0)]), unframed],
      [own.subarray(0, own.byteLength - 1), unframed],
      [Buffer.concat([Uint8Array.of(0), own.subarray(1)]), unframed],
    ];
    for (const [frame, reason] of cases) {
      damaged((file) =>
        rebuilt(file, (block, i) =>
          indexOf(file)[i]!.offset === target.offset ? { ...block, bytes: framed(frame) } : block,
        ),
      );
      const reader = await open();
      await expectCorrupt(() => reader.get(bytes("key-0100"), 200), target.offset, reason);
      reader.close();
    }
  });

  test("a block index whose raw size is past what a block can be (forged, its CRC good)", async () => {
    // 2^32 - 259 wrapped, in the index's Int32Array, to -259: the block cache's head moved back
    // over the blocks it held, and a key of an intact block read as absent.
    const { index } = sections(table);
    for (const rawSize of [2 ** 31, 2 ** 32 - 259, 2 ** 32]) {
      damaged((file) => rebuilt(file, (block, i) => (i === 1 ? { ...block, rawSize } : block)));
      await expectCorrupt(open, index, new RegExp(`block 1 at \\d+ is too long: \\d+ bytes, ${rawSize} decompressed`));
    }
  });

  test("a block index whose sizes are too short for a block (forged, its CRC good)", async () => {
    // Stored: fewer bytes than a frame's CRC and one more; decompressed: less than a block's trailer and one restart point.
    const cases: [(block: StoredBlock) => StoredBlock, RegExp][] = [
      [
        (block) => ({ ...block, bytes: block.bytes.subarray(0, 4) }),
        /block 1 at \d+ is too short: 4 bytes, \d+ decompressed/,
      ],
      [(block) => ({ ...block, rawSize: 11 }), /block 1 at \d+ is too short: \d+ bytes, 11 decompressed/],
    ];
    for (const [change, reason] of cases) {
      damaged((file) => rebuilt(file, (block, i) => (i === 1 ? change(block) : block)));
      await expectCorrupt(open, sections(fs.bytes(PATH)).index, reason);
    }
  });

  test("a compressed block whose index says it is stored as built (forged): its frame is no block", async () => {
    const target = blockOf(table, bytes("key-0100"));
    damaged((file) =>
      rebuilt(file, (block, i) => (indexOf(file)[i]!.offset === target.offset ? { ...block, rawSize: 0 } : block)),
    );
    const reader = await open();
    // The frame and its CRC pass a block's CRC check (the same layout): the block's trailer does not parse.
    const reason = /restart points are not within its entries/;
    await expectCorrupt(() => reader.get(bytes("key-0100"), 200), target.offset, reason);
  });

  test("a flipped byte in the block index", async () => {
    const { index } = sections(table);
    damaged(flip(index + 2));
    await expectCorrupt(open, index, /block index fails its checksum/);
  });

  test("a flipped byte in the Bloom filter", async () => {
    const { bloom } = sections(table);
    damaged(flip(bloom + 5));
    await expectCorrupt(open, bloom, /Bloom filter fails its checksum/);
  });

  test("a flipped byte in the TTL section, when the expiries are read", async () => {
    const { ttl } = sections(table);
    damaged(flip(ttl + 1));
    const reader = await open();
    await expectCorrupt(() => reader.expiring(), ttl, /TTL section fails its checksum/);
  });

  test("a flipped byte in the properties", async () => {
    const { properties } = sections(table);
    damaged(flip(properties));
    await expectCorrupt(open, properties, /properties fails its checksum/);
  });

  test("a flipped byte in the footer", async () => {
    damaged(flip(table.byteLength - FOOTER_BYTES + 9));
    await expectCorrupt(open, table.byteLength - FOOTER_BYTES, /footer fails its checksum/);
  });

  test("a truncated file: a few bytes short, or only its start", async () => {
    damaged((file) => file.subarray(0, file.byteLength - 3));
    await expectCorrupt(open, table.byteLength - 3 - 8, /truncated/);
    damaged((file) => file.subarray(0, 50));
    await expectCorrupt(open, 50, /truncated/);
  });

  test("a file cut inside its data, with a footer that names bytes beyond its end", async () => {
    const footer = table.subarray(table.byteLength - FOOTER_BYTES);
    damaged((file) => Buffer.concat([file.subarray(0, 600), footer]));
    await expectCorrupt(open, 600, /sections do not tile the file/);
  });

  test("a wrong magic: not a table", async () => {
    damaged((file) => {
      file.set(bytes("SQLite f"), 0);
      return file;
    });
    await expectCorrupt(open, 0, /not a HomeKV table \(bad magic/);
  });

  test("an unknown format version, its footer checksum intact", async () => {
    const footerAt = table.byteLength - FOOTER_BYTES;
    damaged((file) => {
      const view = new DataView(file.buffer, file.byteOffset + footerAt, FOOTER_BYTES);
      view.setUint32(64, 3, true);
      view.setUint32(68, Bun.hash.crc32(file.subarray(footerAt, footerAt + 64 + 4)), true);
      return file;
    });
    await expectCorrupt(open, footerAt + 64, /table format version 3 is not supported \(this build reads 1 to 2\)/);
  });
});

/** The block that holds `key`. */
function blockOf(file: Uint8Array, key: Uint8Array): IndexedBlock {
  const block = indexOf(file).find((b) => Buffer.compare(b.lastKey, key) >= 0);
  if (block === undefined) throw new Error(`no block holds ${key}`);
  return block;
}
