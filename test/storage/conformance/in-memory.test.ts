import { describeDatabaseConformance } from "./database-suite.ts";
import { inMemoryDriver } from "./drivers.ts";

describeDatabaseConformance("in memory", inMemoryDriver);
