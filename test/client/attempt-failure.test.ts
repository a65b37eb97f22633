import { expect, test } from "bun:test";
import { Metadata, type ServiceError, status as Status } from "@grpc/grpc-js";
import { classify } from "../../src/client/attempt-failure.ts";
import { ERROR_CODE_TRAILER } from "../../src/errors.ts";

/** A failed call as grpc-js reports it: a status, its details, and the trailers (the server's code). */
function failed(code: Status, details: string, errorCode?: string): ServiceError {
  const metadata = new Metadata();
  if (errorCode !== undefined) metadata.set(ERROR_CODE_TRAILER, errorCode);
  return Object.assign(new Error(details), { code, details, metadata });
}

test("refusals that mean a write was not applied: E_NOT_LEADER, E_PROPOSAL_DROPPED, a log closed before it took the write", () => {
  expect(classify(failed(Status.UNAVAILABLE, "this member is not the leader", "E_NOT_LEADER")).kind).toBe(
    "not-applied",
  );
  expect(classify(failed(Status.UNAVAILABLE, "another leader's entry", "E_PROPOSAL_DROPPED")).kind).toBe("not-applied");
  expect(classify(failed(Status.UNAVAILABLE, "the store is shutting down", "E_UNAVAILABLE")).kind).toBe("not-applied");
  // The Raft driver ends proposals in flight with this one: a new leader may still commit them.
  expect(classify(failed(Status.UNAVAILABLE, "the member is shutting down", "E_UNAVAILABLE")).kind).toBe("unavailable");
  // The text alone, without the server's trailer, says nothing.
  expect(classify(failed(Status.UNAVAILABLE, "the store is shutting down")).kind).toBe("lost");
});

test("a call grpc-js never gave to a connection was not sent; one it did, and that got no answer, was lost", () => {
  const refused = failed(
    Status.UNAVAILABLE,
    "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1 (2025-01-01T00:00:00.000Z). Resolution note: ",
  );
  expect(classify(refused)).toMatchObject({
    kind: "not-sent",
    reason: "connection refused (is homekv serve running there?)",
  });
  const queued = failed(Status.DEADLINE_EXCEEDED, "Deadline exceeded after 1.001s,Waiting for LB pick");
  expect(classify(queued).kind).toBe("not-sent");
  const sent = failed(
    Status.DEADLINE_EXCEEDED,
    "Deadline exceeded after 1.500s,LB pick: 0.001s,remote_addr=127.0.0.1:4",
  );
  expect(classify(sent)).toMatchObject({ kind: "lost", reason: "no answer before the deadline" });
  expect(classify(failed(Status.UNAVAILABLE, "Connection dropped")).reason).toBe(
    "the connection failed: Connection dropped",
  );
});

test("any other status is the server's answer, with its code", () => {
  const answer = classify(failed(Status.OUT_OF_RANGE, "revision 3 is compacted", "E_COMPACTED"));
  expect(answer.kind).toBe("answer");
  expect(answer.error.errorCode).toBe("E_COMPACTED");
  expect(answer.error.message).toBe("OUT_OF_RANGE: revision 3 is compacted");
});
