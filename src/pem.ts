import { readFileSync } from "node:fs";
import { HomeKvError } from "./errors.ts";

/** Reads a PEM file named by a setting; the error names the setting and the file. */
export function readPem(setting: string, path: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new HomeKvError("E_CONFIG", `cannot read ${setting} ${path}: ${code}`);
  }
  if (!pem.includes("-----BEGIN ")) throw new HomeKvError("E_CONFIG", `${setting} ${path} is not a PEM file`);
  return pem;
}
