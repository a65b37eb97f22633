/**
 * Known bugs to plant in the Raft core, one at a time (`npm run mutants`). Each is an exact edit:
 * `search` must occur exactly once in `file` (else the code moved and the mutant must be updated),
 * and is replaced by `replace`. Every one of them must make some Raft test fail.
 */
export interface Mutant {
  name: string;
  /** The bug, in one line. */
  description: string;
  /** Relative to the project root. */
  file: string;
  search: string;
  replace: string;
}

const RAFT = "src/cluster/raft/raft.ts";
const LOG = "src/cluster/raft/raft-log.ts";
const READS = "src/cluster/raft/read-queue.ts";
const PROGRESS = "src/cluster/raft/progress.ts";
const CONFIGURATION = "src/cluster/raft/configuration.ts";
const DURABLE = "src/cluster/raft/durable-log.ts";

export const RAFT_MUTANTS: readonly Mutant[] = [
  {
    name: "double-vote",
    description: "a node grants its vote to every candidate of a term, not just the first",
    file: RAFT,
    search: "this.vote === NONE || this.vote === m.from",
    replace: "true",
  },
  {
    name: "vote-ignores-log",
    description: "a vote (and a pre-vote) is granted without checking that the candidate's log is up to date",
    file: RAFT,
    search: "const grant = eligible && free && this.log.isUpToDate(m.lastIndex, m.lastTerm);",
    replace: "const grant = eligible && free;",
  },
  {
    name: "vote-ignores-log-length",
    description: "log freshness compares last terms only: a shorter log of the same last term wins votes",
    file: LOG,
    search: "lastTerm === myTerm && lastIndex >= this.lastIndex()",
    replace: "lastTerm === myTerm",
  },
  {
    name: "append-per-proposal",
    description: "each proposal and each commit step sends every follower an append of its own, not one per Ready",
    file: RAFT,
    search: "    this.maybeCommit();\n    this.appendsOwed = true;",
    replace: "    this.maybeCommit();\n    for (const to of this.replicas) this.sendAppend(to);",
  },
  {
    name: "figure-8",
    description: "a leader commits an entry of an older term by counting replicas (Figure 8)",
    file: RAFT,
    search: "if (index > this.log.committed && this.log.term(index) === this.currentTerm) {",
    replace: "if (index > this.log.committed) {",
  },
  {
    name: "read-before-term-commit",
    description: "ReadIndex serves a new leader's reads before an entry of its term has committed",
    file: RAFT,
    search: "const termCommitted = this.log.term(this.log.committed) === this.currentTerm;",
    replace: "const termCommitted = true;",
  },
  {
    name: "read-without-quorum",
    description: "a leader serves a read at its commit index at once, with no heartbeat round to confirm it leads",
    file: RAFT,
    search:
      "    if (this.peers.length === 0 && this.config.isVoter(this.id)) return this.releaseAlone();\n    this.broadcastHeartbeat();\n",
    replace: "    this.releaseAlone();\n",
  },
  {
    name: "read-one-follower",
    description: "a read is released once the leader and one follower (not a quorum) answered its round",
    file: READS,
    search: ".sort((a, b) => b - a)[quorum - 1];",
    replace: ".sort((a, b) => b - a)[1];",
  },
  {
    name: "stale-term-processed",
    description: "messages of an older term are processed instead of dropped",
    file: RAFT,
    search: "} else if (m.term < this.currentTerm) {",
    replace: "} else if (false) {",
  },
  {
    name: "append-commit-unclamped",
    description: "a follower moves its commit up to its last index, not just to the index the append matched",
    file: RAFT,
    search: "this.log.commitTo(Math.min(m.commit, matched));",
    replace: "this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));",
  },
  {
    name: "heartbeat-commit-unclamped",
    description: "a heartbeat carries the leader's commit index, not clamped to what the follower is known to match",
    file: RAFT,
    search: "const commit = Math.min(progress.match, this.log.committed);",
    replace: "const commit = this.log.committed;",
  },
  {
    name: "no-check-quorum",
    description: "a leader that no longer hears from a quorum does not step down (CheckQuorum)",
    file: RAFT,
    search: "if (active < this.quorum) return this.becomeFollower(this.currentTerm, NONE);",
    replace: "",
  },
  {
    name: "no-vote-lease",
    description: "a node that hears from its leader still answers (pre-)vote requests of a higher term",
    file: RAFT,
    search: "!m.transfer &&",
    replace: "false &&",
  },
  {
    name: "two-changes-in-flight",
    description: "a leader takes a membership change while an earlier one is not committed",
    file: RAFT,
    search: "if (this.confs.lastChangeIndex > this.log.committed || this.log.term(",
    replace: "if (this.log.term(",
  },
  {
    name: "change-before-term-commit",
    description: "a leader takes a membership change before an entry of its own term committed (Ongaro 2015)",
    file: RAFT,
    search: " || this.log.term(this.log.committed) !== this.currentTerm)\n      return false;",
    replace: ")\n      return false;",
  },
  {
    name: "snapshot-no-match-check",
    description: "a follower installs a snapshot over a log that already holds its last entry, dropping what follows",
    file: RAFT,
    search: "if (this.log.matchTerm(snapshot.index, snapshot.term)) this.log.commitTo(snapshot.index);",
    replace: "if (false) this.log.commitTo(snapshot.index);",
  },
  {
    name: "snapshot-no-commit-check",
    description: "a follower installs a snapshot older than its commit index",
    file: RAFT,
    search: "if (snapshot.index <= this.log.committed) return accept(this.log.committed);",
    replace: "",
  },
  {
    name: "append-ignores-prev-term",
    description: "a follower accepts an append whose previous entry it holds with a different term",
    file: LOG,
    search: "if (!this.matchTerm(prevIndex, prevTerm)) return undefined;",
    replace: "if (prevIndex < this.snapshotIndex() || prevIndex > this.lastIndex()) return undefined;",
  },
  {
    name: "append-truncates-matching",
    description: "a follower replaces its log after an append's entries even when they match (a late append truncates)",
    file: LOG,
    search: "const conflict = entries.findIndex((entry) => !this.matchTerm(entry.index, entry.term));",
    replace: "const conflict = entries.length > 0 ? 0 : -1;",
  },
  {
    name: "leader-ignores-higher-term",
    description: "a leader does not step down on a message of a higher term",
    file: RAFT,
    search: "if (!futureTerm) {",
    replace: 'if (!futureTerm && this.currentRole !== "leader") {',
  },
  {
    name: "vote-kept-in-new-term",
    description: "a node keeps its vote of the previous term when its term rises",
    file: RAFT,
    search: "    if (term > this.currentTerm) {\n      this.vote = NONE;\n",
    replace: "    if (term > this.currentTerm) {\n",
  },
  {
    name: "probe-next-not-reset",
    description: "a rejected probe does not move progress.next back: the leader resends the same append",
    file: PROGRESS,
    search:
      "if (rejectedIndex !== this.next - 1) return false;\n    this.next = Math.max(Math.min(rejectedIndex, hint + 1), this.match + 1);\n",
    replace: "if (rejectedIndex !== this.next - 1) return false;\n",
  },
  {
    name: "removed-leader-stays",
    description: "a leader removed by a committed change goes on leading (§4.2.2)",
    file: RAFT,
    search: "if (!this.config.isVoter(this.id) && this.confs.lastChangeIndex <= this.log.committed)",
    replace: "if (false)",
  },
  {
    name: "votes-from-non-voters",
    description: "a candidate counts votes from nodes that are not voters of its configuration",
    file: RAFT,
    search: "    if (!this.config.isVoter(m.from)) return;\n    this.votes.set(",
    replace: "    this.votes.set(",
  },
  {
    name: "read-answer-unmatched",
    description: "a follower takes any readIndexResp as the answer to a read of its own",
    file: RAFT,
    search: "if (this.forwardedReads.delete(m.request))",
    replace: "if (this.forwardedReads.delete(m.request) || true)",
  },
  {
    name: "snapshot-not-synced",
    description: "Ready.mustSync is false for a Ready that installs a snapshot, whose answer says it is stored",
    file: RAFT,
    search: "this.log.pendingSnapshot !== undefined ||\n        entries.length > 0",
    replace: "entries.length > 0",
  },
  {
    name: "vote-not-synced",
    description: "Ready.mustSync is false when only the vote changed: a vote can be lost in a crash and given twice",
    file: RAFT,
    search: "hardState.term !== this.persisted.term ||\n        hardState.vote !== this.persisted.vote,",
    replace: "hardState.term !== this.persisted.term,",
  },
  {
    name: "timeout-now-to-learner",
    description: "a learner (or a node removed since) campaigns on a timeoutNow",
    file: RAFT,
    search: 'if (this.currentRole !== "leader" && this.config.isVoter(this.id)) this.campaign("vote", true);',
    replace: 'if (this.currentRole !== "leader") this.campaign("vote", true);',
  },
  {
    name: "snapshot-resent",
    description: "a follower receiving a snapshot is not paused: every heartbeat's answer sends the snapshot again",
    file: PROGRESS,
    search: 'if (this.state === "snapshot") return true;',
    replace: 'if (this.state === "snapshot") return false;',
  },
  {
    name: "overwrite-appends",
    description: "entries that replace a conflicting suffix of the unpersisted log are added after it instead",
    file: LOG,
    search: "from === first + this.pending.length)\n",
    replace: "from >= first)\n",
  },
  {
    name: "conf-change-unseen",
    description: "a membership change appended to the log is not taken into the configuration",
    file: CONFIGURATION,
    search: "last <= lastIndex && entries.every((e) => e.conf === undefined)) return;",
    replace: "last <= lastIndex) return;",
  },
  {
    name: "compaction-replays-from-too-late",
    description:
      "a compaction names as the first segment to replay the newest one holding entries, though its first entry may lie past the snapshot's next",
    file: DURABLE,
    search: "if (firstEntry <= index + 1) first = sequence;",
    replace: "first = sequence;",
  },
  {
    name: "compaction-drops-kept-segments",
    description: "a compaction removes the segments older than the new one, the entries it keeps among them",
    file: DURABLE,
    search: "await this.removeOlderThan(firstSegment, snapshot.index).catch(() => {});",
    replace: "await this.removeOlderThan(sequence, snapshot.index).catch(() => {});",
  },
  {
    name: "compaction-first-segment-off-by-one",
    description:
      "a compaction names a segment whose first entries start one past the snapshot's next: the entry after it is in an older one",
    file: DURABLE,
    search: "if (firstEntry <= index + 1) first = sequence;",
    replace: "if (firstEntry <= index + 2) first = sequence;",
  },
  {
    name: "reopen-forgets-first-entries",
    description: "a reopened log does not know where its segments' entries start, and its next compaction fails",
    file: DURABLE,
    search: "      if (replayed.firstEntry !== undefined) firstEntries.set(sequence, replayed.firstEntry);\n",
    replace: "",
  },
  {
    name: "first-entries-from-last-record",
    description: "replay takes a segment's last entries record for where its entries start",
    file: "src/cluster/raft/durable-log-format.ts",
    search: "    firstEntry ??= entry;",
    replace: "    firstEntry = entry ?? firstEntry;",
  },
  {
    name: "first-entries-overwritten",
    description: "each persist records where its entries start as the segment's, a conflict's lower index among them",
    file: DURABLE,
    search: "      if (entries.length > 0 && !this.firstEntries.has(this.sequence))",
    replace: "      if (entries.length > 0)",
  },
  {
    name: "quiesce-with-lagging-follower",
    description: "a leader quiesces while a follower lacks entries, which then wait until something wakes the group",
    file: RAFT,
    search: '      if (progress.match !== last || progress.state !== "replicate") return false;',
    replace: '      if (progress.state !== "replicate") return false;',
  },
  {
    name: "quiet-follower-not-woken-by-detector",
    description:
      "a quiet follower told its leader is unreachable stays quiet, so a group whose quiet leader died never elects",
    file: RAFT,
    search: '    if (this.currentRole !== "follower" || this.currentLeader === NONE) return;\n    this.wake();',
    replace: '    if (this.currentRole !== "follower" || this.currentLeader === NONE) return;',
  },
  {
    name: "quiet-node-deaf-to-messages",
    description: "a quiet node goes on ignoring ticks whatever it is sent: a pre-vote does not wake the leader",
    file: RAFT,
    search: "    if (this.isNews(m)) this.wake();",
    replace: "",
  },
  {
    name: "quiesce-with-read-waiting",
    description: "a leader quiesces while a read waits for its heartbeat round, which is then never sent again",
    file: RAFT,
    search: "if (!this.mayQuiesce || !this.reads.empty || this.transferee !== NONE) return false;",
    replace: "if (!this.mayQuiesce || this.transferee !== NONE) return false;",
  },
  {
    name: "quiesce-during-transfer",
    description:
      "a leader quiesces while a transfer is under way: if the timeoutNow was lost it refuses proposals for good",
    file: RAFT,
    search: "if (!this.mayQuiesce || !this.reads.empty || this.transferee !== NONE) return false;",
    replace: "if (!this.mayQuiesce || !this.reads.empty) return false;",
  },
  {
    name: "quiesce-with-silent-voter",
    description:
      "a leader quiesces without having heard from every voter lately, so one cut off from its quorum stays leader",
    file: RAFT,
    search: "      if (!progress.recentActive) return false;\n",
    replace: "",
  },
  {
    name: "heartbeat-wakes-quiet-follower",
    description:
      "a late or duplicated heartbeat wakes quiet followers but not their leader; ticking alone, two of them elect one of themselves",
    file: RAFT,
    search: '    return !(m.type === "heartbeat" && m.term === this.currentTerm && m.from === this.currentLeader);',
    replace: "    return true;",
  },
  {
    name: "woken-leader-trusts-old-answers",
    description:
      "a leader that wakes keeps the answers it had before it went quiet: cut off while quiet, it goes quiet again and stays leader",
    file: RAFT,
    search:
      "    this.heartbeatElapsed = 0;\n    for (const progress of this.progress.values()) progress.recentActive = false;",
    replace: "    this.heartbeatElapsed = 0;",
  },
  {
    name: "removed-node-wakes-group",
    description:
      "a vote request from a node that is no voter wakes the quiet group: a removed node's campaign keeps it awake",
    file: RAFT,
    search:
      '    if ((m.type === "vote" || m.type === "preVote") && !this.config.isVoter(m.from) && !m.transfer) return false;\n',
    replace: "",
  },
  {
    name: "transfer-vote-leaves-group-quiet",
    description:
      "a transfer's vote request from a non-voter wakes nobody, though it passes the lease: the quiet group it unseats stays leaderless",
    file: RAFT,
    search: "!this.config.isVoter(m.from) && !m.transfer) return false;",
    replace: "!this.config.isVoter(m.from)) return false;",
  },
  {
    name: "quiesce-without-quorum",
    description:
      "a leader the host told most voters are down goes quiet with nobody answering it, instead of stepping down",
    file: RAFT,
    search: "    return answered >= this.quorum;",
    replace: "    return true;",
  },
  {
    name: "member-back-not-caught-up",
    description:
      "a quiet leader told a member is back stays quiet: the member, which got no quiesce, waits for its election timeout to be heard",
    file: RAFT,
    search: "        this.down.delete(id);\n        this.wake();",
    replace: "        this.down.delete(id);",
  },
  {
    name: "down-member-keeps-group-awake",
    description: "a leader waits for every member to answer, down or not: one dead node keeps all its groups ticking",
    file: RAFT,
    search: "      if (this.down.has(id)) continue;\n",
    replace: "",
  },
  {
    name: "quiesce-to-down-member",
    description:
      "the quiesce goes to members taken for down too: one that is up with an old leader's entry commits it (safety)",
    file: RAFT,
    search: '      if (!this.down.has(to)) this.send({ type: "quiesce"',
    replace: '      this.send({ type: "quiesce"',
  },
  {
    name: "vote-as-non-member",
    description:
      "a node asked to vote only as a member of its own configuration (a replica made again empty) votes all the same",
    file: RAFT,
    search: "    const eligible = !this.votesOnlyAsMember || this.config.isMember(this.id);",
    replace: "    const eligible = true;",
  },
];
