import { describeDatabaseConformance } from "./database-suite.ts";
import { durableDriver } from "./drivers.ts";

describeDatabaseConformance("durable, fsync always", durableDriver("always"));
describeDatabaseConformance("durable, fsync everysec", durableDriver("everysec"));
