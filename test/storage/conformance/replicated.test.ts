import { describeDatabaseConformance } from "./database-suite.ts";
import { replicatedDriver } from "./drivers.ts";

describeDatabaseConformance("replicated, the leader of three members", replicatedDriver);
