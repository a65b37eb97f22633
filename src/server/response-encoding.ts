import { BinaryWriter } from "@bufbuild/protobuf/wire";
import type { MessageFns } from "../gen/homekv_service.ts";
import type { MethodDefinition } from "./call.ts";

/**
 * Answers that carry values, encoded with one copy of their bytes instead of three. ts-proto's
 * `responseSerialize` encodes into a new BinaryWriter, whose buffer doubles past the message (2 MiB
 * for a 1 MiB value), slices the message out of it, then copies that into a Buffer (`Buffer.from`):
 * 4 MiB allocated for an answer of 1 MiB, besides the value read out of the store. Here one writer
 * serves every encoding — encoding is synchronous, nothing else writes in between — and the Buffer
 * is a view of the slice, which is the answer's own (exactly its size). A client that asks for
 * answers of 1 MiB and does not read them had the server allocate 5 MiB for each
 * (test/hardening/slow-reader-answers.test.ts); the collector frees such garbage late.
 */

/** A writer whose buffer grew past this is dropped once the message is out, not kept for the next. */
const SHARED_WRITER_BYTES_MAX = 4 * 1024 * 1024;

let writer = new BinaryWriter();

/** `message` encoded with `codec`, as a Buffer of its own bytes. */
export function encodeOnce<T>(codec: MessageFns<T>, message: T): Buffer {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = codec.encode(message, writer).finish();
  } catch (error) {
    writer = new BinaryWriter(); // one that threw midway holds part of a message
    throw error;
  }
  if (bytes.byteLength > SHARED_WRITER_BYTES_MAX) writer = new BinaryWriter();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

type ResponseOf<M> = M extends MethodDefinition<unknown, infer Res> ? Res : never;

/** The methods of `service` named in `codecs` serialize their answers with `encodeOnce`. */
export function withResponsesEncodedOnce<S extends Record<string, MethodDefinition>>(
  service: S,
  codecs: { [K in keyof S]?: MessageFns<ResponseOf<S[K]>> },
): S {
  const wrapped: Record<string, MethodDefinition> = { ...service };
  for (const [name, codec] of Object.entries(codecs) as [string, MessageFns<unknown> | undefined][]) {
    if (codec) wrapped[name] = { ...service[name]!, responseSerialize: (value) => encodeOnce(codec, value) };
  }
  return wrapped as S;
}
