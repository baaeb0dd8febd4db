"""Every Redis key name, in one place.

Keys that multi-key scripts touch together share one hash tag, so the service also runs
on Redis Cluster: queue, conversation states and counsellor states live in ``{g}``; each
conversation's messages live in their own slot ``{c:ID}`` so message traffic spreads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "chat"

    # -- global slot --------------------------------------------------------------
    def _g(self, name: str) -> str:
        return f"{self.prefix}:{{g}}:{name}"

    @property
    def channel(self) -> str:
        """Pub/sub channel for every event: a doorbell; the store stays the truth."""
        return f"{self.prefix}:events"

    @property
    def queue(self) -> str:
        return self._g("queue")

    @property
    def nicknames(self) -> str:
        return self._g("nicknames")

    @property
    def grace(self) -> str:
        """Deadlines of dropped parties: member ``v:CONV`` or ``s:STAFF``, score deadline."""
        return self._g("grace")

    @property
    def active(self) -> str:
        return self._g("active")

    @property
    def handling(self) -> str:
        return self._g("handling")

    @property
    def retention_cursor(self) -> str:
        """End time up to which transcripts have been purged."""
        return self._g("retention-cursor")

    @property
    def retention_lock(self) -> str:
        """The last purge slot (interval number) taken by a process: one run per slot."""
        return self._g("retention-lock")

    @property
    def retention_log(self) -> str:
        """Recent purge runs, newest first: ``slot:node`` (for operators and tests)."""
        return self._g("retention-log")

    @property
    def outcomes(self) -> str:
        """Recent outcomes of waiting: "a" left while waiting, "s" served (for estimates)."""
        return self._g("outcomes")

    @property
    def available(self) -> str:
        return self._g("available")

    @property
    def staff_index(self) -> str:
        return self._g("staff-index")

    @property
    def facts(self) -> str:
        """Index of anonymous facts: member conversation id, score the time it ended."""
        return self._g("facts")

    def fact(self, conversation_id: str) -> str:
        """Anonymous facts of one ended conversation: times, topic, rating; no text."""
        return self._g(f"fact:{conversation_id}")

    @property
    def wait_histogram(self) -> str:
        """Cumulative bucket counts, count and sum of helped visitors' waits (/metrics)."""
        return self._g("wait-histogram")

    @property
    def counters(self) -> str:
        """Monotonic counters shared by all processes (messages, rejected frames...)."""
        return self._g("counters")

    @property
    def audit(self) -> str:
        """Append-only audit stream of supervision actions."""
        return self._g("audit")

    def watchers(self, conversation_id: str) -> str:
        """Staff ids watching a conversation (for the overview and the counsellor)."""
        return self._g(f"watchers:{conversation_id}")

    def address_secret(self, day: str) -> str:
        """The day's secret for hashing client addresses (never the addresses)."""
        return self._g(f"addr-secret:{day}")

    def blocked_address(self, address_hash: str) -> str:
        return self._g(f"block:addr:{address_hash}")

    def blocked_token(self, token_hash: str) -> str:
        return self._g(f"block:token:{token_hash}")

    def connections(self, address_hash: str) -> str:
        """Sockets open from this hashed address: a hash, one count per node id."""
        return self._g(f"conns:{address_hash}")

    def node_addresses(self, node_id: str) -> str:
        """The hashed addresses a process counts sockets of, to drop its counts if it dies."""
        return self._g(f"node-addrs:{node_id}")

    def conversation_address(self, conversation_id: str) -> str:
        """The hashed address a conversation came from, kept 24 hours for a block."""
        return self._g(f"conv-addr:{conversation_id}")

    def login_failures(self, who: str) -> str:
        return self._g(f"login-fail:{who}")

    @property
    def nodes(self) -> str:
        """Live processes: member node id, score its last heartbeat."""
        return self._g("nodes")

    def node_connections(self, node_id: str) -> str:
        """Sockets a process holds (``v|CONV|CONN``, ``s|STAFF|CONN``), for clean-up if it dies."""
        return self._g(f"node-conns:{node_id}")

    def trainee_watchers(self, staff_id: str) -> str:
        """Supervisors watching a trainee: while empty, the trainee gets no chats."""
        return self._g(f"trainee-watchers:{staff_id}")

    def participants(self, conversation_id: str) -> str:
        """Supervisors who joined a conversation visibly and may write in it."""
        return self._g(f"joined:{conversation_id}")

    def conversation(self, conversation_id: str) -> str:
        return self._g(f"conv:{conversation_id}")

    def resume(self, token_hash: str) -> str:
        return self._g(f"resume:{token_hash}")

    def pending_hello(self, nick_key: str) -> str:
        """The conversation a nickname's hello created while no socket is attached to it
        yet (set by hello.lua, deleted on attach): a retry may end that orphan."""
        return self._g(f"hello-pending:{nick_key}")

    def visitor_presence(self, conversation_id: str) -> str:
        return self._g(f"vconn:{conversation_id}")

    def account(self, username: str) -> str:
        return self._g(f"account:{username}")

    def staff_state(self, staff_id: str) -> str:
        return self._g(f"sstate:{staff_id}")

    def staff_conversations(self, staff_id: str) -> str:
        return self._g(f"sconvs:{staff_id}")

    def staff_connections(self, staff_id: str) -> str:
        return self._g(f"sconns:{staff_id}")

    def session(self, token_hash: str) -> str:
        return self._g(f"session:{token_hash}")

    # -- per-conversation slot ------------------------------------------------------
    def messages(self, conversation_id: str) -> str:
        return f"{self.prefix}:{{c:{conversation_id}}}:msgs"

    def whispers(self, conversation_id: str) -> str:
        """Supervisor whispers: a key of their own, which no visitor path ever reads."""
        return f"{self.prefix}:{{c:{conversation_id}}}:whispers"

    def comments(self, conversation_id: str) -> str:
        """Review comments on single messages, for the counsellor's intervision."""
        return f"{self.prefix}:{{c:{conversation_id}}}:comments"

    def refs(self, conversation_id: str) -> str:
        return f"{self.prefix}:{{c:{conversation_id}}}:refs"
