import { createDatabase } from "../../../src/storage/database.ts";
import { describeDatabaseConformance } from "./database-suite.ts";

describeDatabaseConformance("in memory", { open: async (settings) => createDatabase(settings) });
