import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import {
  type DescriptorProto,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { descriptorSet } from "../gen/descriptor-set.ts";

interface Schema {
  /** Every message of the descriptor set, by its full name (".homekv_service.GetRequest"). */
  messages: Map<string, DescriptorProto>;
  /** Each method's request type, by the method's path ("/homekv_service.HomeKvService/Get"). */
  inputs: Map<string, string>;
}

let schema: Schema | undefined;

/** Built from the descriptor set the first time a request fails to decode (never on a good one). */
function loadedSchema(): Schema {
  if (schema) return schema;
  const messages = new Map<string, DescriptorProto>();
  const inputs = new Map<string, string>();
  const add = (prefix: string, list: readonly DescriptorProto[]) => {
    for (const message of list) {
      messages.set(`${prefix}.${message.name}`, message);
      add(`${prefix}.${message.name}`, message.nestedType);
    }
  };
  for (const file of fromBinary(FileDescriptorSetSchema, descriptorSet).file) {
    add(file.package === "" ? "" : `.${file.package}`, file.messageType);
    for (const service of file.service)
      for (const method of service.method)
        inputs.set(`/${file.package}.${service.name}/${method.name}`, method.inputType);
  }
  schema = { messages, inputs };
  return schema;
}

/**
 * Where in a request of method `path` the decoder stopped, as a field path by the .proto's names
 * (`revision`, `records[1].key`, `field 9` for a number the message does not have): the field whose
 * bytes end at or after `offset`, the decoder's position when it threw (after the value it could not
 * take, or inside the one it could not read). Undefined when no field reaches that far. A hint for
 * the error message: the bytes are walked by their wire types alone, nested messages by the schema.
 */
export function fieldAt(path: string, bytes: Uint8Array, offset: number): string | undefined {
  const { messages, inputs } = loadedSchema();
  const type = inputs.get(path);
  return type === undefined ? undefined : fieldIn(messages, type, bytes, 0, bytes.length, offset);
}

function fieldIn(
  messages: Map<string, DescriptorProto>,
  type: string,
  bytes: Uint8Array,
  start: number,
  end: number,
  offset: number,
): string | undefined {
  const message = messages.get(type);
  const reader = new BinaryReader(bytes.subarray(0, end));
  reader.pos = start;
  const seen = new Map<number, number>();
  while (reader.pos < end) {
    let number: number;
    let wireType: WireType;
    try {
      [number, wireType] = reader.tag();
    } catch {
      return undefined;
    }
    const field = message?.field.find((f) => f.number === number);
    const index = seen.get(number) ?? 0;
    seen.set(number, index + 1);
    const repeated = field?.label === FieldDescriptorProto_Label.REPEATED;
    const name = field === undefined ? `field ${number}` : repeated ? `${field.name}[${index}]` : field.name;
    let value: { start: number; end: number } | undefined;
    try {
      if (wireType === WireType.LengthDelimited) {
        const length = reader.uint32();
        value = { start: reader.pos, end: reader.pos + length };
        if (value.end > end) return name;
        reader.pos = value.end;
      } else reader.skip(wireType);
    } catch {
      return name; // the failure is in this field's own bytes
    }
    if (offset > reader.pos) continue;
    const nested =
      value !== undefined && field?.type === FieldDescriptorProto_Type.MESSAGE && offset > value.start
        ? fieldIn(messages, field.typeName, bytes, value.start, value.end, offset)
        : undefined;
    return nested === undefined ? name : `${name}.${nested}`;
  }
  return undefined;
}
