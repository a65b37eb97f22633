import { afterAll, beforeAll, expect, test } from "bun:test";
import { credentials, type ServiceError, status } from "@grpc/grpc-js";
import {
  DelRequest,
  type DelResponse,
  HomeKvServiceClient,
  Record,
  SetRequest,
  type SetResponse,
  TxnRequest,
  type TxnResponse,
} from "../../src/gen/homekv_service.ts";
import { bytes, text } from "../helpers/bytes.ts";
import { useServer } from "../helpers/server.ts";

/** Request ids on one server, through the generated stub: a retry of an id applies at most once. */
const server = useServer();
let raw: HomeKvServiceClient;
beforeAll(() => {
  raw = new HomeKvServiceClient(server.address, credentials.createInsecure());
});
afterAll(() => raw.close());

type Callback<Res> = (error: ServiceError | null, response: Res) => void;
/** A unary call of the stub, as a promise. */
const promised = <Res>(call: (callback: Callback<Res>) => unknown) =>
  new Promise<Res>((resolve, reject) => call((error, response) => (error ? reject(error) : resolve(response))));
const set = (request: SetRequest) => promised<SetResponse>((cb) => raw.set(request, cb));
const del = (request: DelRequest) => promised<DelResponse>((cb) => raw.del(request, cb));
const txn = (request: TxnRequest) => promised<TxnResponse>((cb) => raw.txn(request, cb));

test("a Set, Del or Txn retried with its request id answers with the first one's revision and applies nothing", async () => {
  const first = await set(SetRequest.fromPartial({ records: [{ key: "rid/a", value: bytes("1") }], requestId: "s-1" }));
  const retry = await set(SetRequest.fromPartial({ records: [{ key: "rid/a", value: bytes("2") }], requestId: "s-1" }));
  expect(retry.revision).toBe(first.revision);
  expect(text((await server.client.get(["rid/a"])).records[0]!.value!)).toBe("1");
  const deleted = await del(DelRequest.fromPartial({ keys: ["rid/a"], requestId: "d-1" }));
  await server.client.set({ "rid/a": "3" });
  const delAgain = await del(DelRequest.fromPartial({ keys: ["rid/a"], requestId: "d-1" }));
  expect([delAgain.revision, delAgain.deleted]).toEqual([deleted.revision, 1]);
  expect(text((await server.client.get(["rid/a"])).records[0]!.value!)).toBe("3");
  const request: TxnRequest = {
    ...TxnRequest.fromPartial({ requestId: "t-1" }),
    success: [
      { op: { $case: "put", put: Record.fromPartial({ key: "rid/t", value: bytes("x") }) } },
      { op: { $case: "get", get: "rid/t" } },
    ],
  };
  const once = await txn(request);
  const twice = await txn(request);
  expect([twice.revision, twice.succeeded, text(twice.records[0]!.value!)]).toEqual([once.revision, true, "x"]);
  const { revision } = await server.client.get(["rid/t"]);
  expect(revision).toBe(once.revision);
});

test("writes in flight with the same request id commit once", async () => {
  const requests = Array.from({ length: 5 }, (_, i) =>
    set(SetRequest.fromPartial({ records: [{ key: "rid/race", value: bytes(String(i)) }], requestId: "race" })),
  );
  const revisions = new Set((await Promise.all(requests)).map((r) => r.revision));
  expect(revisions.size).toBe(1);
  const [record] = (await server.client.get(["rid/race"])).records;
  expect(record!.version).toBe(1);
});

test("a request id over the key size limit is refused, naming the limit, and nothing is applied", async () => {
  const before = (await server.client.get(["rid/long"])).revision;
  const error = await set(
    SetRequest.fromPartial({ records: [{ key: "rid/long", value: bytes("v") }], requestId: "r".repeat(5_000) }),
  ).catch((e: ServiceError) => e);
  expect((error as ServiceError).code).toBe(status.INVALID_ARGUMENT);
  expect((error as ServiceError).details).toContain("--max-key-bytes");
  expect((await server.client.get(["rid/long"])).revision).toBe(before);
});
