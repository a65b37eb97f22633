#!/usr/bin/env bun
import { runCli } from "./cli/run.ts";

await runCli(process.argv.slice(2));
