import { HomeKvError } from "../../errors.ts";
import type { NodeId } from "../raft/types.ts";
import { parsePeerAddress } from "../transport/peer-address.ts";
import type { ChangeRequest } from "./cluster-rpc-format.ts";
import { askStatus } from "./cluster-status.ts";
import { type GroupView, nameOf } from "./group-view.ts";
import { pollUntil } from "./poll.ts";

/** Voters a group may have (--voters is 1 to this); more only slow every commit down. */
export const VOTERS_MAX = 7;
/** Three voters bear the loss of one. */
export const VOTERS_DEFAULT = 3;
/** Voters and learners together: a bound on the group (learners beyond the voters wait to replace one). */
export const MEMBERS_MAX = 16;
/** A learner whose log is within this many entries of the leader's last is caught up: it may vote. */
export const CAUGHT_UP_ENTRIES_MAX = 16;
/** How long a liveness question to a voter (before a removal) waits for the answer. */
const LIVENESS_TIMEOUT_MS = 1_000;

export interface MembershipOptions {
  /** Learners are promoted while the group has fewer voters than this. */
  votersTarget: number;
  /** How long a leadership transfer may take before it is reported as failed. */
  transferTimeoutMs: number;
}

/**
 * The membership changes a leader makes: `execute` runs one that a person asked for (`homekv
 * cluster add / remove / transfer-leader`, from this member or forwarded by another), and
 * `promoteCaughtUpLearner` (on a timer) makes a learner that has caught up a voter while the group
 * has fewer voters than it should. Each resolves with the index the change was applied at, so that
 * the member that asked can wait until it has applied that far too.
 */
export class MembershipChanges {
  /** An automatic change (promotion, removal) is in flight: at most one at a time. */
  private changing = false;
  /** The last reason autopilot gave for keeping a dead voter: said once, not every round. */
  private lastRefusal = "";

  constructor(
    private readonly view: GroupView,
    private readonly options: MembershipOptions,
  ) {}

  async execute(request: ChangeRequest): Promise<number> {
    if (!this.view.driver.leads) throw new HomeKvError("E_NOT_LEADER", "this member is not the leader");
    if (request.op === "add") await this.add(request.name, request.peerAddress);
    else if (request.op === "remove") await this.remove(request.name);
    else await this.transfer(request.name);
    // The driver's own count, not the core's: the core's moves on only when the driver advances the
    // Ready, which may be after a log write that the change's apply did not wait for.
    return this.view.driver.appliedIndex;
  }

  /** One step of autopilot's promotion: at most one change in flight, and only on the leader. */
  async promoteCaughtUpLearner(): Promise<void> {
    const { driver, log } = this.view;
    if (this.changing || !driver.leads) return;
    const { status, conf } = driver.groupStatus();
    if (conf.voters.length >= this.options.votersTarget) return;
    const ready = conf.learners.find(
      (id) => (status.progress.get(id)?.match ?? 0) >= status.lastIndex - CAUGHT_UP_ENTRIES_MAX,
    );
    if (ready === undefined) return;
    this.changing = true;
    try {
      await driver.proposeConfChange({ type: "addVoter", node: ready });
      log.info(
        `promoted ${nameOf(this.view, ready)} to voter: it caught up (${conf.voters.length + 1} of ${this.options.votersTarget} voters)`,
      );
    } catch (error) {
      // Another change in flight, or leadership lost: the next round looks again.
      if (!(error instanceof HomeKvError)) throw error;
    } finally {
      this.changing = false;
    }
  }

  /**
   * One step of autopilot's removal, on the leader: removes one voter of `dead` (names gossip has
   * seen dead long enough) that does not answer the leader either, unless the voters left could not
   * make a quorum; the promotion above
   * then fills its place with a caught-up learner, if there is one.
   */
  async removeDeadVoter(dead: readonly string[]): Promise<void> {
    const { driver, log } = this.view;
    if (this.changing || !driver.leads || dead.length === 0) return;
    const { conf } = driver.groupStatus();
    const voter = conf.voters.find((id) => id !== this.view.selfId && dead.includes(nameOf(this.view, id)));
    if (voter === undefined) return;
    const name = nameOf(this.view, voter);
    this.changing = true;
    try {
      // Gossip's view alone is not trusted with a voter: a leader whose own gossip stalled would
      // see every peer dead. One that still answers this leader stays.
      if ((await askStatus(this.view, name, LIVENESS_TIMEOUT_MS)) !== undefined)
        throw new HomeKvError("E_MEMBERSHIP", "gossip says it is dead, but it answers this leader");
      await this.checkQuorumWithout(voter, conf.voters);
      await driver.proposeConfChange({ type: "remove", node: voter });
      log.info(`autopilot removed ${name}: gossip has seen it dead for longer than --dead-server-after`);
      this.lastRefusal = "";
    } catch (error) {
      if (!(error instanceof HomeKvError)) throw error;
      const refusal = `autopilot keeps dead voter ${name} for now: ${error.message}`;
      if (refusal !== this.lastRefusal) log.warn(refusal);
      this.lastRefusal = refusal;
    } finally {
      this.changing = false;
    }
  }

  private async add(name: string, peerAddress: string): Promise<void> {
    const { directory } = this.view;
    const address = parsePeerAddress(peerAddress).text;
    const { conf } = this.view.driver.groupStatus();
    const members = [...conf.voters, ...conf.learners];
    const id = directory.idForNewMember(name);
    if (members.includes(id)) {
      const known = directory.addressOf(id);
      if (known === address) return; // asked again (a retry): it is there already
      throw new HomeKvError(
        "E_MEMBERSHIP",
        `${name} is a member already, at ${known ?? "an unknown address"}: remove it first to give it another address`,
      );
    }
    if (members.length >= MEMBERS_MAX)
      throw new HomeKvError("E_MEMBERSHIP", `the group has ${members.length} members, the most it may have`);
    await this.view.driver.proposeConfChange({ type: "addLearner", node: id, member: { name, peerAddress: address } });
    this.view.log.info(`added ${name} (${address}) as a learner`);
  }

  private async remove(name: string): Promise<void> {
    const id = this.memberId(name);
    const { conf } = this.view.driver.groupStatus();
    if (conf.voters.includes(id)) await this.checkQuorumWithout(id, conf.voters);
    await this.view.driver.proposeConfChange({ type: "remove", node: id });
    this.view.log.info(`removed ${name}`);
  }

  /**
   * Refuses a voter's removal that would leave fewer live voters than the quorum of those that
   * remain: the group could then commit nothing, that removal included, until the dead came back.
   * A voter is live when it answers this leader now.
   */
  private async checkQuorumWithout(id: NodeId, voters: readonly NodeId[]): Promise<void> {
    const remaining = voters.filter((voter) => voter !== id);
    const name = nameOf(this.view, id);
    if (remaining.length === 0)
      throw new HomeKvError("E_MEMBERSHIP", `${name} is the only voter: removing it would leave the group no quorum`);
    const live = await Promise.all(
      remaining.map(
        async (voter) =>
          voter === this.view.selfId ||
          (await askStatus(this.view, nameOf(this.view, voter), LIVENESS_TIMEOUT_MS)) !== undefined,
      ),
    );
    const liveNames = remaining.filter((_, i) => live[i]).map((voter) => nameOf(this.view, voter));
    const quorum = Math.floor(remaining.length / 2) + 1;
    if (liveNames.length < quorum)
      throw new HomeKvError(
        "E_MEMBERSHIP",
        `removing ${name} would leave ${remaining.length} voters of which ${liveNames.length} answer (${liveNames.join(", ") || "none"}); a quorum is ${quorum}: bring the others back, or remove a dead one first`,
      );
  }

  /** Hands leadership to voter `name` and waits until it leads (asked again each round: the core gives up after one election timeout). */
  private async transfer(name: string): Promise<void> {
    const id = this.memberId(name);
    const { driver, tickMs } = this.view;
    if (!driver.groupStatus().conf.voters.includes(id))
      throw new HomeKvError("E_MEMBERSHIP", `${name} is a learner: only a voter can lead`);
    if (id === this.view.selfId) return;
    await pollUntil(
      () => {
        const { status } = driver.groupStatus();
        if (status.leader === id) return true;
        if (status.role === "leader") driver.transferLeadership(id);
        return false;
      },
      { what: `${name} taking over leadership`, timeoutMs: this.options.transferTimeoutMs, intervalMs: tickMs },
    );
    this.view.log.info(`handed leadership to ${name}`);
  }

  private memberId(name: string): NodeId {
    const { conf } = this.view.driver.groupStatus();
    const id = [...conf.voters, ...conf.learners].find((member) => this.view.directory.nameOf(member) === name);
    if (id === undefined)
      throw new HomeKvError(
        "E_MEMBERSHIP",
        `no member is named ${name}; the members are ${[...conf.voters, ...conf.learners].map((m) => nameOf(this.view, m)).join(", ")}`,
      );
    return id;
  }
}
