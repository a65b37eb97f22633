import { readFileSync } from "node:fs";
import { defineCommand } from "citty";
import { connectionArgs, requestIdArg, requestIdOption, withClient } from "./connection.ts";
import { columns, jsonValue, showValue } from "./format.ts";
import { parseTxn } from "./txn-syntax.ts";
import { UsageError } from "./usage-error.ts";

export const txnCommand = defineCommand({
  meta: {
    name: "txn",
    description:
      "Run a transaction written in the txn syntax (see README) from --file or stdin: if ... then ... else ...",
  },
  args: {
    ...connectionArgs,
    ...requestIdArg,
    file: { type: "string", description: "Read the transaction from this file (default: stdin)" },
  },
  async run({ args }) {
    let source: string;
    try {
      source = args.file === undefined ? readFileSync(0, "utf8") : readFileSync(args.file, "utf8");
    } catch (error) {
      throw new UsageError(
        `cannot read the transaction from ${args.file ?? "stdin"}: ${error instanceof Error ? error.message : error}`,
      );
    }
    const request = parseTxn(source);
    const writeOptions = requestIdOption(args["request-id"]);
    const result = await withClient(args, (client) => client.txn(request, writeOptions));
    if (args.json) {
      const records = result.records.map(({ key, value, modRevision }) => ({
        key,
        ...jsonValue(value),
        mod_revision: modRevision,
      }));
      console.log(JSON.stringify({ succeeded: result.succeeded, revision: result.revision, records }));
      return;
    }
    console.log(
      `${result.succeeded ? "SUCCEEDED (then branch)" : "FAILED (else branch)"}, revision ${result.revision}`,
    );
    if (result.records.length > 0)
      console.log(columns(result.records.map(({ key, value }) => [key, showValue(value)])));
  },
});
