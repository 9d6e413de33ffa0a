"""Faults under load, on a stack of their own (`tests.fault_stack`): PostgreSQL restarted, the
broker unreachable, the broker killed, the mail server and Meta's Graph API down, PostgreSQL and
the mail server slow; in the soak, one node of a three-node Kafka cluster killed too. Traffic
comes from the load generator (`inbox load`'s session), which follows every event to its
effect: afterwards each effect exists exactly once.

`make test` runs short outages; `make soak` (INBOX_SOAK=1) runs them for a minute and more.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from benchmarks.stack import BACKBONE
from inbox.dev.broker import choose_broker
from inbox.load.report import LoadReport
from inbox.load.runner import LoadSession
from inbox.load.traffic import REPLY_DELIVERY, Mix
from shared.config import Settings
from shared.db.pool import create_pool
from shared.kafka.client import connection_options
from shared.topics import INBOX_COMMANDS, all_topic_names
from tests.conftest import MESSENGER_APP_SECRET, eventually
from tests.fault_stack import FaultStack
from tests.helpers import command, unique
from tests.messenger_support import Meta, accepted, messenger_shop, numeric_id, text_of

SOAK = os.environ.get("INBOX_SOAK") == "1"
#: How long a dependency stays down (the mail server and Meta: a minute in the soak).
OUTAGE = 60.0 if SOAK else 6.0
#: Mixed events per second while it is (every kind: messages, replies, carts, activity, orders).
RATE = 150.0 if SOAK else 50.0
#: Time for everything held up to get through afterwards (retries back off up to 64 s).
GRACE = 180.0 if SOAK else 60.0

pytestmark = pytest.mark.timeout(900 if SOAK else 240)

#: A broker killed and started again must keep what it had: Apache Kafka does, Tansu (the
#: fallback without Java or Maven) keeps nothing across a restart.
needs_kafka = pytest.mark.skipif(
    choose_broker()[0] != "kafka",
    reason="a broker killed under load needs Apache Kafka (Java 17+ and Maven): the fallback "
           "broker, Tansu, keeps nothing across a restart")


@pytest.fixture(scope="module")
async def faults() -> AsyncIterator[FaultStack]:
    async with FaultStack().up() as stack:
        yield stack


@contextlib.asynccontextmanager
async def load_on(stack: FaultStack, run_prefix: str) -> AsyncIterator[LoadSession]:
    """The load generator's session against `stack`, started and stopped."""
    session = LoadSession(stack.settings, shops=3, progress=SOAK,
                          run_id=unique(run_prefix)[-8:])
    await session.start()
    try:
        yield session
    finally:
        await session.stop()


@pytest.fixture(scope="module")
async def load(faults: FaultStack) -> AsyncIterator[LoadSession]:
    async with load_on(faults, "f") as session:
        yield session


@pytest.fixture(scope="module")
async def db(faults: FaultStack):
    pool = await create_pool(faults.settings, min_size=1, max_size=3)
    yield pool
    await pool.close()


async def under_load(load: LoadSession, fault: Callable[[], Awaitable[None]], duration: float,
                     rate: float = RATE, mix: Mix | None = None,
                     grace: float = GRACE) -> LoadReport:
    """A phase of open-loop traffic with `fault` done during it; the report once everything
    sent has had its effect (or `grace` is over)."""
    async with asyncio.TaskGroup() as both:  # a fault that goes wrong stops the phase
        both.create_task(fault())
        phase = both.create_task(load.phase(rate, duration, mix, grace=grace, settle=2.0))
    report = phase.result()
    print(report.text())
    return report


def assert_exactly_once(report: LoadReport, faults: FaultStack, emails_before: int,
                        unknown_outcomes_allowed: int = 0) -> None:
    assert report.clean, report.text()
    assert sum(report.sent.values()) > 0
    # Each email arrived once: its Message-ID is the reply's own.
    ids = collections.Counter(faults.email_ids()[emails_before:])
    assert not ids or max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]
    # Replies by email and in-store chat all got through, nothing given up on (the load's
    # Messenger, Instagram and Shop-app shops have no Page or account connected: those replies
    # are refused by design). The one exception, when a notifier is killed: a send it had in
    # flight is reported failed ("outcome unknown"), never repeated.
    failed = {o: len(v) for p in report.paths.values() for o, v in p.outcomes.items()
              if "failed" in o and not o.startswith(("messenger", "instagram", "shop_app"))}
    unknown = sum(n for o, n in failed.items() if o.endswith("failed:unknown_outcome"))
    assert unknown <= unknown_outcomes_allowed and sum(failed.values()) == unknown, failed


class MerchantOnMessenger:
    """A shop with its Messenger Page connected, a customer who wrote on Messenger, and the
    merchant answering them: every answer must reach Meta once, in order."""

    def __init__(self, faults: FaultStack, load: LoadSession, db) -> None:
        self.faults, self.load, self.db = faults, load, db
        self.meta = Meta(faults.graph_api.url)
        self.replies: list[str] = []

    async def start(self) -> MerchantOnMessenger:
        self.shop = await messenger_shop(self.load.producer, self.db,
                                         self.faults.services["gateway"].url, self.meta)
        psid = numeric_id()
        await self.meta.message(self.shop.page_id, psid, "Is the anorak waterproof?")
        self.conversation = await eventually(lambda: self.db.fetchrow(
            "SELECT * FROM conversations WHERE shop_id = $1 AND thread_ref = $2",
            self.shop.shop_id, f"{self.shop.page_id}:{psid}"))
        return self

    async def answer(self, seconds: float, every: float = 1.0) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            text = f"On its way ({len(self.replies) + 1})"
            await self.load.producer.send(INBOX_COMMANDS, command(
                self.shop.shop_id, self.conversation["conversation_id"], "reply", text=text))
            self.replies.append(text)
            await asyncio.sleep(every)

    async def delivered(self, unknown_outcome: int = 0) -> list[str]:
        """What Meta accepted (each at most once, in the order written), once every answer
        has its result; `unknown_outcome` answers may be reported failed instead."""
        async def all_done() -> list | None:
            rows = await self.db.fetch(
                """SELECT text, delivery_status, delivery_reason FROM messages
                   WHERE conversation_id = $1 AND direction = 'outbound'
                     AND delivery_status IN ('sent', 'failed')""",
                self.conversation["conversation_id"])
            return rows if len(rows) == len(self.replies) else None

        results = await eventually(all_done, timeout=GRACE, interval=0.5)
        failed = [r for r in results if r["delivery_status"] == "failed"]
        assert len(failed) <= unknown_outcome, [dict(r) for r in failed]
        assert all("not sent again" in r["delivery_reason"] for r in failed)
        sends = await accepted(self.meta, self.shop.page_id,
                               lambda s: text_of(s).startswith("On its way"),
                               count=len(self.replies) - len(failed))
        texts = [text_of(s) for s in sends]
        assert len(texts) == len(set(texts)), "an answer reached Meta twice"
        assert texts == [t for t in self.replies if t in texts], "answers out of order"
        return texts


async def all_services(faults: FaultStack, ready: bool, failing: str | None = None
                       ) -> dict[str, dict]:
    """The services' /readyz once every one is (not) ready, with `failing` the check that says
    why (the probe answers {} until then)."""
    found = await faults.readiness()
    for answer in found.values():
        if (answer["status"] == 200) != ready:
            return {}
        if failing and not any(not c["ok"] and c_name.startswith(failing)
                               for c_name, c in answer["checks"].items()):
            return {}
    return found


def pids(faults: FaultStack) -> dict[str, int]:
    return {name: s.process.pid for name, s in faults.services.items()
            if s.process.poll() is None}


async def replication(settings: Settings) -> dict[str, tuple[int, int, int]]:
    """Each of the project's topics: (replicas, min.insync.replicas, the fewest replicas in sync
    of any of its partitions), as the brokers tell."""
    admin = AIOKafkaAdminClient(**connection_options(settings, "tests-admin"))
    await admin.start()
    try:
        names = all_topic_names()
        topics = await admin.describe_topics(names)
        configs = await admin.describe_configs([
            ConfigResource(ConfigResourceType.TOPIC, n, {"min.insync.replicas": None})
            for n in names])
    finally:
        await admin.close()
    min_isr = {r["resource_name"]: int(next(iter(r["config_entries"]))["config_value"])
               for response in configs for r in response.to_object()["resources"]}
    return {t["topic"]: (min(len(p["replicas"]) for p in t["partitions"]), min_isr[t["topic"]],
                         min(len(p["isr"]) for p in t["partitions"]))
            for t in topics}


@pytest.fixture
async def cluster() -> AsyncIterator[FaultStack]:
    """A fault stack of its own over three Apache Kafka nodes: up only for its test."""
    async with FaultStack(brokers=3).up() as stack:
        yield stack


@pytest.fixture
async def cluster_load(cluster: FaultStack) -> AsyncIterator[LoadSession]:
    async with load_on(cluster, "c") as session:
        yield session


#: How long the killed node of the three stays down before it is started again (the two left
#: serve meanwhile: no client waits for it).
NODE_DOWN = 30.0 if SOAK else 6.0


@needs_kafka
@pytest.mark.skipif(not SOAK, reason="a stack of its own over three Apache Kafka nodes: about "
                    "90 s on two cores, run by `make soak` (INBOX_SOAK=1) only")
async def test_one_broker_of_three_killed_under_load(cluster: FaultStack,
                                                     cluster_load: LoadSession):
    """Three nodes, every topic on all three with min.insync.replicas 2: one node SIGKILLed
    under load, the two left take over the partitions it led (and the groups it coordinated);
    every event has its effect once, no service is restarted. Started again, the node catches
    up: every partition has its three replicas in sync again.

    First in the module: its stack is down again before the other tests' comes up."""
    topics = await replication(cluster.settings)  # as created at start
    assert set(topics) == set(all_topic_names()) and set(topics.values()) == {(3, 2, 3)}, topics
    before, emails_before = pids(cluster), len(cluster.email_ids())
    victim = cluster.brokers[0]  # first in every client's bootstrap list, too
    not_ready: set[str] = set()
    took: dict[str, float] = {}

    async def watch_readiness(until: asyncio.Event) -> None:
        while not until.is_set():
            found = await cluster.readiness()
            not_ready.update(name for name, answer in found.items() if answer["status"] != 200)
            await asyncio.sleep(0.5)

    async def kill_one_broker() -> None:
        await asyncio.sleep(2)
        done = asyncio.Event()
        watching = asyncio.create_task(watch_readiness(done))
        try:
            victim.kill()
            await asyncio.sleep(NODE_DOWN)
            restarting = time.monotonic()
            await asyncio.to_thread(victim.start, 120)  # blocking: not on the event loop
            took["restart"] = time.monotonic() - restarting
            await eventually(lambda: all_services(cluster, ready=True), timeout=60, interval=0.5)
        finally:
            done.set()
            await watching

    report = await under_load(cluster_load, kill_one_broker, duration=NODE_DOWN + 20)
    assert_exactly_once(report, cluster, emails_before)
    assert pids(cluster) == before, "a service had to be restarted"
    caught_up = time.monotonic()

    async def all_in_sync() -> bool:
        return set((await replication(cluster.settings)).values()) == {(3, 2, 3)}

    await eventually(all_in_sync, timeout=60, interval=0.5)
    print(f"{sum(report.sent.values()):,} events under load, one node of three SIGKILLed and "
          f"down {NODE_DOWN:g} s: lost {report.lost}, duplicated {report.duplicated}; effects "
          f"p99 {report.p99_ms():,.0f} ms; not ready at some point: {sorted(not_ready) or 'none'}"
          f"; the node restarted in {took['restart']:.1f} s, all replicas in sync "
          f"{time.monotonic() - caught_up:.1f} s after the load phase; no service restarted")


#: Every service, killed in turn (SIGKILL) and started again.
VICTIMS = ("router", "notifier", "classifier", "presence", "gateway")
SECONDS_PER_VICTIM = 30.0 if SOAK else 4.0


async def test_each_service_killed_under_load(faults: FaultStack, load: LoadSession, db):
    merchant = await MerchantOnMessenger(faults, load, db).start()
    emails_before = len(faults.email_ids())

    async def kill_each_in_turn() -> None:
        for name in VICTIMS:
            await asyncio.sleep(SECONDS_PER_VICTIM / 2)
            faults.services[name].kill()
            await asyncio.sleep(0.5)
            faults.services[name].start()
            await faults.services[name].wait_ready()
            await asyncio.sleep(SECONDS_PER_VICTIM / 2)

    async def kills_while_the_merchant_answers() -> None:
        async with asyncio.TaskGroup() as both:
            both.create_task(kill_each_in_turn())
            both.create_task(merchant.answer(len(VICTIMS) * SECONDS_PER_VICTIM, every=0.5))

    report = await under_load(load, kills_while_the_merchant_answers,
                              duration=len(VICTIMS) * SECONDS_PER_VICTIM + 4)
    # A notifier killed between recording a send as in flight and the remote server's answer:
    # that send is reported ("outcome unknown"), never repeated; at most one per conversation
    # being sent to at that moment (on a slow machine, five of them have been seen).
    assert_exactly_once(report, faults, emails_before, unknown_outcomes_allowed=10)
    delivered = await merchant.delivered(unknown_outcome=1)
    gaps = await db.fetchval(
        """SELECT count(*) FROM (SELECT conversation_id FROM timeline_items
           JOIN conversations USING (conversation_id) WHERE shop_id = ANY($1)
           GROUP BY conversation_id HAVING max(seq) <> count(*)) g""", load.shop_ids)
    assert gaps == 0, "a timeline has a gap"
    print(f"{sum(report.sent.values()):,} events and {len(merchant.replies)} Messenger answers "
          f"under load, {len(VICTIMS)} services killed: lost {report.lost}, duplicated "
          f"{report.duplicated}; {len(delivered)} answers reached Meta once each, in order")


async def test_postgres_restarted_under_load(faults: FaultStack, load: LoadSession):
    before, emails_before = pids(faults), len(faults.email_ids())

    async def restart_postgres() -> None:
        await asyncio.sleep(2)
        faults.stop_postgres()
        # Every service notices and says why it is not ready (the database check).
        down = await eventually(lambda: all_services(faults, ready=False, failing="postgres"),
                                timeout=20, interval=0.5)
        print({name: answer["checks"]["postgres"] for name, answer in down.items()})
        await asyncio.sleep(OUTAGE)
        faults.start_postgres()
        # And recovers by itself: no restart.
        await eventually(lambda: all_services(faults, ready=True), timeout=60, interval=0.5)

    report = await under_load(load, restart_postgres, duration=OUTAGE + 10)
    assert_exactly_once(report, faults, emails_before)
    assert pids(faults) == before, "a service had to be restarted"


async def test_broker_unreachable_under_load(faults: FaultStack, load: LoadSession):
    before, emails_before = pids(faults), len(faults.email_ids())

    async def partition_the_broker() -> None:
        await asyncio.sleep(2)
        faults.proxies["kafka"].cut()
        down = await eventually(lambda: all_services(faults, ready=False, failing="kafka"),
                                timeout=20, interval=0.5)
        print({name: answer["checks"]["kafka"] for name, answer in down.items()})
        # Kafka clients give a request 40 s by default; the partition stays shorter than that
        # (the load generator's own sends would expire otherwise, not the services').
        await asyncio.sleep(min(OUTAGE, 25.0))
        faults.proxies["kafka"].start()
        await eventually(lambda: all_services(faults, ready=True), timeout=60, interval=0.5)

    report = await under_load(load, partition_the_broker, duration=min(OUTAGE, 25.0) + 10)
    assert_exactly_once(report, faults, emails_before)
    assert pids(faults) == before, "a service had to be restarted"


#: How long a killed broker stays down before it is started again. Its clients' sends wait for
#: it meanwhile, each for at most 40 s (the request timeout): down and restarting (10 to 20 s:
#: the node waits out its previous registration's 9 s session first) stay shorter.
BROKER_DOWN = min(OUTAGE, 10.0)


@needs_kafka
async def test_broker_killed_under_load(faults: FaultStack, load: LoadSession):
    """SIGKILL the broker (nothing flushed, no handover) and start it again on its data: every
    service says it is not ready (naming kafka) meanwhile, then recovers by itself; every event
    has its effect once (the producers are idempotent: a send retried across the crash is
    not written twice)."""
    assert faults.broker is not None
    before, emails_before = pids(faults), len(faults.email_ids())
    took: dict[str, float] = {}

    async def kill_the_broker() -> None:
        assert faults.broker is not None
        await asyncio.sleep(2)
        faults.broker.kill()
        killed = time.monotonic()
        down = await eventually(lambda: all_services(faults, ready=False, failing="kafka"),
                                timeout=20, interval=0.5)
        print({name: answer["checks"]["kafka"] for name, answer in down.items()})
        await asyncio.sleep(max(0.0, killed + BROKER_DOWN - time.monotonic()))
        restarting = time.monotonic()
        await asyncio.to_thread(faults.broker.start, 120)  # blocking: not on the event loop
        took["restart"] = time.monotonic() - restarting
        await eventually(lambda: all_services(faults, ready=True), timeout=60, interval=0.5)
        took["ready"] = time.monotonic() - restarting

    report = await under_load(load, kill_the_broker, duration=BROKER_DOWN + 25)
    assert_exactly_once(report, faults, emails_before)
    assert pids(faults) == before, "a service had to be restarted"
    print(f"{sum(report.sent.values()):,} events under load, the broker SIGKILLed and down "
          f"{BROKER_DOWN:g} s: lost {report.lost}, duplicated {report.duplicated}; it restarted "
          f"in {took['restart']:.1f} s, every service ready {took['ready']:.1f} s after the "
          "restart began, none restarted")


async def test_mail_server_and_meta_down_then_each_delivery_made_once(
    faults: FaultStack, load: LoadSession, db
):
    merchant = await MerchantOnMessenger(faults, load, db).start()
    emails_before = len(faults.email_ids())

    async def mail_and_meta_down() -> None:
        await asyncio.sleep(2)
        faults.proxies["smtp"].cut()
        faults.proxies["graph_api"].cut()
        await merchant.answer(OUTAGE)  # the merchant keeps answering on Messenger meanwhile
        faults.proxies["smtp"].start()
        faults.proxies["graph_api"].start()

    report = await under_load(load, mail_and_meta_down, duration=OUTAGE + 8,
                              mix=Mix(message=30, reply=40, cart=10, activity=10, order=10))
    assert_exactly_once(report, faults, emails_before)
    emailed = report.paths[REPLY_DELIVERY].outcomes.get("email sent", [])
    assert emailed, "no reply went by email: the outage tested nothing"
    assert await merchant.delivered() == merchant.replies  # all of them, once, in order


#: The overload: traffic well beyond what the stack handles with PostgreSQL and mail this slow.
OVERLOAD_RATE = 300.0 if SOAK else 150.0
OVERLOAD_SECONDS = 120.0 if SOAK else 15.0
#: Afterwards the backlog drains, the slower the machine the longer (the phase ends as soon
#: as every effect is seen).
OVERLOAD_GRACE = 300.0 if SOAK else 150.0


async def test_memory_stays_flat_when_postgres_and_the_mail_server_are_slow(
    faults: FaultStack, load: LoadSession
):
    """Backpressure: with every exchange with PostgreSQL and with the mail server held 50 ms,
    traffic arrives faster than it can be handled. The services take what they can;
    the rest waits in Kafka and in PostgreSQL, not in their memory."""
    emails_before = len(faults.email_ids())
    rss: dict[str, list[int]] = {name: [] for name in BACKBONE}
    behind: list[float] = []

    async def slow_dependencies() -> None:
        faults.proxies["postgres"].slow()
        faults.proxies["smtp"].slow()
        try:
            end = time.monotonic() + OVERLOAD_SECONDS
            while time.monotonic() < end:
                for name in BACKBONE:
                    rss[name].append(faults.rss_bytes(name))
                behind.append(load.tracker.oldest_pending(time.perf_counter()))
                await asyncio.sleep(1.0)
        finally:
            faults.proxies["postgres"].slow(False)
            faults.proxies["smtp"].slow(False)

    report = await under_load(load, slow_dependencies, duration=OVERLOAD_SECONDS,
                              rate=OVERLOAD_RATE, grace=OVERLOAD_GRACE,
                              mix=Mix(message=50, reply=30, cart=5, activity=10, order=5))
    assert_exactly_once(report, faults, emails_before)
    mb = 1024 * 1024
    # Overloaded indeed: effects fell further and further behind while it lasted.
    print(f"oldest effect awaited: {max(behind):.1f} s at worst; "
          f"at 1/4 {behind[len(behind) // 4]:.1f} s, at the end {behind[-1]:.1f} s")
    assert max(behind) > 3.0, "not overloaded: the test proves nothing"
    for name, samples in rss.items():
        settled = samples[len(samples) // 4]  # after the first buffers and pools filled
        print(f"{name}: RSS {samples[0] / mb:.0f} MB at the start, {settled / mb:.0f} MB at 1/4, "
              f"{max(samples) / mb:.0f} MB at most, {samples[-1] / mb:.0f} MB at the end")
        assert max(samples) - settled < 40 * mb, f"{name} buffers without bound"


async def test_no_secret_in_any_log(faults: FaultStack, load: LoadSession, db):
    """Last in this module: the services' logs hold all that went wrong above (outages, kills,
    retries). None shows a password, a signing secret, an access token or a staff token."""
    merchant = await MerchantOnMessenger(faults, load, db).start()  # tokens in use
    await merchant.answer(2.0)
    await merchant.delivered()
    logs = faults.service_logs()
    assert all(logs.values()), "a service wrote no log: nothing to look at"
    secrets = {**faults.secrets, "Messenger app secret": MESSENGER_APP_SECRET,
               "Page access token": merchant.shop.token,
               **{f"staff token of {who}": t for who, t in merchant.shop.shop.tokens.items()}}
    found = [(what, service) for what, secret in secrets.items()
             for service, text in logs.items() if secret in text]
    assert not found, found
