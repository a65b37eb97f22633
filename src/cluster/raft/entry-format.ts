import { assert } from "../../errors.ts";
import { type ByteReader, type ByteWriter, FormatError } from "../../io/format/bytes.ts";
import type { ConfChange, Entry, MemberAddress } from "./types.ts";

/**
 * A log entry's kind and body, frozen: the same bytes in the durable log's segments
 * (durable-log-format.ts) and in the peers' append messages (message-codec.ts), which each write
 * the entry's index and term their own way before it. Codes are never renumbered.
 *
 *   u8 kind   0 empty (a new leader's entry, data null)
 *             1 data: u32 length · bytes
 *             2 configuration change: u8 type (1 add learner, 2 add voter, 3 remove) · u64 node
 *             3 configuration change naming the member: as 2, then u32 length · UTF-8 name (1 to 64
 *               characters) · u32 length · UTF-8 peer address (1 to 320 characters)
 */
const KIND_EMPTY = 0;
const KIND_DATA = 1;
const KIND_CONF = 2;
const KIND_CONF_MEMBER = 3;
/** A member's name is a --node-id (at most 64 characters); an address is a host name (at most 253) and a port. */
export const MEMBER_NAME_CHARS_MAX = 64;
export const PEER_ADDRESS_CHARS_MAX = 320;
const CONF_TYPE_CODES: Readonly<Record<ConfChange["type"], number>> = { addLearner: 1, addVoter: 2, remove: 3 };
const CONF_TYPES = new Map(Object.entries(CONF_TYPE_CODES).map(([type, code]) => [code, type as ConfChange["type"]]));

/** The fewest bytes an entry body takes (an empty entry's kind), for bounding a claimed count. */
export const ENTRY_BODY_BYTES_MIN = 1;

export function writeEntryBody(w: ByteWriter, entry: Entry): void {
  if (entry.conf) {
    // Neither format has room for data beside a change: it would be dropped without a word.
    assert(entry.data === null, () => `the configuration change at ${entry.index} carries data`);
    const { type, node, member } = entry.conf;
    w.u8(member ? KIND_CONF_MEMBER : KIND_CONF)
      .u8(CONF_TYPE_CODES[type])
      .u64(node);
    if (member) {
      assert(
        fits(member.name, MEMBER_NAME_CHARS_MAX),
        () => `member name ${JSON.stringify(member.name)} at ${entry.index}`,
      );
      assert(
        fits(member.peerAddress, PEER_ADDRESS_CHARS_MAX),
        () => `peer address of ${member.name} at ${entry.index}`,
      );
      w.string(member.name).string(member.peerAddress);
    }
  } else if (entry.data === null) w.u8(KIND_EMPTY);
  else w.u8(KIND_DATA).bytes(entry.data);
}

/** The entry at `index` of `term` whose body comes next; its data is a copy, not a view of `r`'s bytes. */
export function readEntryBody(r: ByteReader, index: number, term: number): Entry {
  const at = r.position;
  const kind = r.u8();
  if (kind === KIND_EMPTY) return { index, term, data: null };
  if (kind === KIND_DATA) return { index, term, data: r.bytesCopy() };
  if (kind !== KIND_CONF && kind !== KIND_CONF_MEMBER)
    throw new FormatError(`unknown entry kind ${kind} at byte ${at} (index ${index})`);
  const type = CONF_TYPES.get(r.u8());
  if (type === undefined) throw new FormatError(`unknown configuration change at byte ${at + 1} (index ${index})`);
  const node = r.u64();
  if (node === 0) throw new FormatError(`configuration change of node 0 at byte ${at + 2} (index ${index})`);
  if (kind === KIND_CONF) return { index, term, data: null, conf: { type, node } };
  return { index, term, data: null, conf: { type, node, member: readMember(r, index) } };
}

function readMember(r: ByteReader, index: number): MemberAddress {
  const read = (what: string, charsMax: number) => {
    const at = r.position;
    const text = r.string();
    if (!fits(text, charsMax))
      throw new FormatError(`${what} of ${text.length} characters at byte ${at} (index ${index}): 1 to ${charsMax}`);
    return text;
  };
  const name = read("member name", MEMBER_NAME_CHARS_MAX);
  return { name, peerAddress: read("peer address", PEER_ADDRESS_CHARS_MAX) };
}

function fits(text: string, charsMax: number): boolean {
  return text.length > 0 && text.length <= charsMax;
}
