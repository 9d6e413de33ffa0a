"""The deployment files agree with the code: compose, Prometheus, alerts and the dashboard.

Static checks only (nothing is started): a service the compose file runs exists, sets only
variables `Settings` reads, is health-checked on its own port; Prometheus scrapes every service;
every metric an alert or a panel queries is one the code exports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from shared.config import SERVICE_PORTS, variable_names
from tests.helpers import register_all_metrics

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "overview.json"

APP_SERVICES = ("router", "classifier", "presence", "notifier", "gateway")
INFRA_SERVICES = ("kafka", "postgres", "prometheus", "grafana", "mailpit")
SCALABLE = ("router", "classifier", "presence", "notifier")

# Series Prometheus makes itself, for every target.
BUILTIN_SERIES = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}
# PromQL words that look like identifiers but are not metric names.
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan", "start", "end",
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}


def load_yaml(path: Path) -> Any:
    with path.open() as f:
        return yaml.safe_load(f)


def compose_services() -> dict[str, dict[str, Any]]:
    return load_yaml(COMPOSE)["services"]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- NAME=value` form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def healthcheck_test(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test") or []
    return test if isinstance(test, str) else " ".join(str(t) for t in test)


# --- metric names --------------------------------------------------------------------------------

def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, keywords and labels left out)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors and subqueries
    expr = re.sub(  # label lists of aggregations and vector matching
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr
    )
    expr = re.sub(r"\$\{?\w+\}?", "", expr)  # dashboard variables outside brackets
    names = set()
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = match.group()
        if word.lower() in PROMQL_KEYWORDS or expr[match.end():].lstrip().startswith("("):
            continue  # a keyword, an aggregation or a function call
        names.add(word)
    return names


def exported_metric_names() -> set[str]:
    """Every series name the shared metrics expose, as Prometheus sees them when scraping."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
        "stateset": ("",),
        "unknown": ("",),
    }
    register_all_metrics()
    names: set[str] = set()
    for family in REGISTRY.collect():
        # A labelled metric without children yet has no samples: derive the names from the type.
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def unknown_metrics(expr: str, exported: set[str]) -> set[str]:
    return metric_names_in(expr) - exported - BUILTIN_SERIES


def test_metric_name_extraction() -> None:
    # The checks below are only as good as this parser: it must find names and skip the rest.
    expr = (
        'histogram_quantile(0.99, sum by (le, topic) (rate(inbox_a_bucket{job=~"$job", '
        'topic!="x"}[$__rate_interval]))) > on (job) group_left (topic) max without (partition) '
        "(inbox_b offset 5m) or absent(up{job=\"router\"}) and 1e3 < bool inbox_c:ratio"
    )
    assert metric_names_in(expr) == {"inbox_a_bucket", "inbox_b", "up", "inbox_c:ratio"}
    exported = exported_metric_names()
    assert "inbox_events_consumed_total" in exported
    assert "inbox_handle_duration_seconds_bucket" in exported
    assert "inbox_outbox_pending_rows" in exported
    assert "inbox_events_consumed" not in exported  # a counter is scraped with `_total`
    assert unknown_metrics("rate(inbox_not_a_metric_total[5m])", exported) == {
        "inbox_not_a_metric_total"
    }


# --- compose -------------------------------------------------------------------------------------

def test_compose_has_every_service() -> None:
    services = compose_services()
    missing = [name for name in (*INFRA_SERVICES, *APP_SERVICES) if name not in services]
    assert not missing, f"docker-compose.yml lacks {missing}"


def test_every_service_module_exists() -> None:
    # Every app service of the project is deployed, and nothing the project does not have.
    on_disk = {p.parent.name for p in (ROOT / "services").glob("*/__main__.py")}
    assert on_disk == set(APP_SERVICES)


def test_app_services_run_their_own_module() -> None:
    services = compose_services()
    for name in APP_SERVICES:
        command = command_of(services[name])
        assert command[:2] == ["python", "-m"], f"{name}: {command}"
        assert command[2] == f"services.{name}", f"{name} runs {command[2]}"
        module = command[2].split(".")
        assert (ROOT.joinpath(*module) / "__main__.py").is_file(), f"{name}: no {command[2]}"


def test_app_services_set_only_known_settings() -> None:
    known = variable_names()
    services = compose_services()
    for name in APP_SERVICES:
        env = environment_of(services[name])
        unknown = sorted(k for k in env if k.upper() not in known)
        assert not unknown, f"{name} sets variables Settings does not read: {unknown}"
        # The production knobs that differ from the development defaults.
        assert env.get("KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092", name
        assert env.get("KAFKA_ENABLE_IDEMPOTENCE") == "true", name
        assert env.get("KAFKA_REPLICATION_FACTOR") == "1", name
        assert env.get("HTTP_HOST") == "0.0.0.0", name
        assert env.get("DATABASE_URL", "").startswith("postgresql://"), name
        assert "@postgres:5432/" in env["DATABASE_URL"], name
        assert env.get("HTTP_PORT") == str(SERVICE_PORTS[name]), f"{name} HTTP_PORT"
    assert environment_of(services["notifier"]).get("SMTP_URL") == "smtp://mailpit:1025"


def test_app_services_are_health_checked_and_restarted() -> None:
    services = compose_services()
    for name in APP_SERVICES:
        service = services[name]
        healthcheck = service.get("healthcheck") or {}
        assert not healthcheck.get("disable"), f"{name}: healthcheck disabled"
        test = healthcheck_test(service)
        assert "/readyz" in test, f"{name}: healthcheck does not ask /readyz: {test!r}"
        assert "HTTP_PORT" in test or str(SERVICE_PORTS[name]) in test, f"{name}: port"
        assert "curl" not in test, f"{name}: the slim image has no curl"
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name


def test_app_services_wait_for_healthy_kafka_and_postgres() -> None:
    services = compose_services()
    for name in ("kafka", "postgres"):
        assert healthcheck_test(services[name]), f"{name} has no healthcheck"
    for name in APP_SERVICES:
        depends_on = services[name].get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dependency in ("kafka", "postgres"):
            condition = (depends_on.get(dependency) or {}).get("condition")
            assert condition == "service_healthy", f"{name} -> {dependency}: {condition}"


def test_ports_let_the_consumers_scale() -> None:
    services = compose_services()
    for name in SCALABLE:
        assert not services[name].get("ports"), f"{name} publishes a host port: cannot scale"
        assert "container_name" not in services[name], f"{name}: fixed container name"
    gateway_ports = [str(p) for p in services["gateway"].get("ports") or []]
    assert any(p.endswith(":8080") for p in gateway_ports), gateway_ports


def test_kafka_does_not_create_topics_on_its_own() -> None:
    env = environment_of(compose_services()["kafka"])
    assert env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false"
    assert env.get("KAFKA_PROCESS_ROLES") == "broker,controller"  # KRaft, no ZooKeeper


def test_compose_runs_the_kafka_version_the_development_stack_runs() -> None:
    from inbox.dev.kafka import kafka_version

    image = compose_services()["kafka"]["image"]
    assert image == f"apache/kafka:{kafka_version()}", (image, kafka_version())
    assert kafka_version().split(".")[0] == "4"


def test_compose_mounts_the_deploy_files() -> None:
    services = compose_services()

    def mounts(name: str) -> dict[str, str]:
        pairs = (str(v).split(":")[:2] for v in services[name].get("volumes") or [])
        return {target: source for source, target in pairs}

    assert mounts("prometheus").get("/etc/prometheus") == "./deploy/prometheus"
    grafana = mounts("grafana")
    assert grafana.get("/etc/grafana/provisioning") == "./deploy/grafana/provisioning"
    assert grafana.get("/var/lib/grafana/dashboards") == "./deploy/grafana/dashboards"


# --- Prometheus ----------------------------------------------------------------------------------

def scrape_targets() -> dict[str, set[str]]:
    """host:port targets of each job, static or DNS-discovered."""
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    targets: dict[str, set[str]] = {}
    for job in config["scrape_configs"]:
        found = targets.setdefault(job["job_name"], set())
        for static in job.get("static_configs") or []:
            found.update(static.get("targets") or [])
        for dns in job.get("dns_sd_configs") or []:
            found.update(f"{host}:{dns['port']}" for host in dns.get("names") or [])
    return targets


def test_prometheus_scrapes_every_service() -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    assert config["global"]["scrape_interval"] == "15s"
    targets = scrape_targets()
    for name in APP_SERVICES:
        assert f"{name}:{SERVICE_PORTS[name]}" in targets.get(name, set()), (
            f"no job {name!r} scraping {name}:{SERVICE_PORTS[name]}: {targets}"
        )


def test_prometheus_loads_the_alert_rules() -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    rule_files = config.get("rule_files") or []
    assert "alerts.yml" in rule_files
    for rule_file in rule_files:
        assert (PROMETHEUS_DIR / rule_file).is_file(), rule_file


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    names = [rule.get("alert") for rule in rules]
    assert len(names) == len(set(names)), names
    assert {"ServiceDown", "ConsumerLagging", "DeadLettersGrowing"} <= set(names)
    for rule in rules:
        assert rule.get("alert") and str(rule.get("expr", "")).strip(), rule
        assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}, rule
        assert rule.get("annotations", {}).get("summary"), rule
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_alerts_use_only_exported_metrics() -> None:
    exported = exported_metric_names()
    for rule in alert_rules():
        assert metric_names_in(rule["expr"]), f"{rule['alert']}: no metric in {rule['expr']!r}"
        unknown = unknown_metrics(rule["expr"], exported)
        assert not unknown, f"{rule['alert']} queries metrics nobody exports: {unknown}"


# --- Grafana -------------------------------------------------------------------------------------

def dashboard_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel, rows' collapsed panels included; rows themselves left out."""
    found = []
    for panel in panels:
        if panel.get("type") == "row":
            found.extend(dashboard_panels(panel.get("panels") or []))
        else:
            found.append(panel)
    return found


def test_grafana_provisioning() -> None:
    datasources = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    [prometheus] = [d for d in datasources["datasources"] if d["type"] == "prometheus"]
    assert prometheus["url"] == "http://prometheus:9090"
    providers = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml")
    paths = [p["options"]["path"] for p in providers["providers"] if p.get("type") == "file"]
    assert paths == ["/var/lib/grafana/dashboards"]


def test_the_domain_dashboard_queries_exported_metrics() -> None:
    """Deliveries and failures per channel, replies, presence, classifier behaviour."""
    dashboard = json.loads((GRAFANA_DIR / "dashboards" / "conversations.json").read_text())
    exported = exported_metric_names()
    queried: set[str] = set()
    for panel in dashboard_panels(dashboard["panels"]):
        for target in panel["targets"]:
            assert not unknown_metrics(target["expr"], exported), panel["title"]
            queried |= metric_names_in(target["expr"])
    assert {"notifier_deliveries_total", "notifier_delivery_failures_total",
            "router_replies_total", "classifier_messages_total",
            "classifier_probability_bucket", "presence_online_visitors"} <= queried


def test_dashboard_panels_query_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    datasource_uid = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ][0]["uid"]
    exported = exported_metric_names()
    panels = dashboard_panels(dashboard["panels"])
    assert panels, "the dashboard has no panels"
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    queried: set[str] = set()
    for panel in panels:
        targets = panel.get("targets") or []
        assert targets, f"panel {panel.get('title')!r} has no targets"
        for target in targets:
            expr = str(target.get("expr", "")).strip()
            assert expr, f"panel {panel.get('title')!r} has a target without expression"
            unknown = unknown_metrics(expr, exported)
            assert not unknown, f"panel {panel.get('title')!r} queries unknown {unknown}"
            queried |= metric_names_in(expr)
            uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
            assert uid == datasource_uid, f"panel {panel.get('title')!r}: datasource {uid}"
    wanted = {
        "inbox_events_consumed_total",
        "inbox_events_processed_total",
        "inbox_events_dead_lettered_total",
        "inbox_handle_duration_seconds_bucket",
        "inbox_consumer_lag_messages",
        "inbox_outbox_pending_rows",
        "up",
    }
    assert wanted <= queried, f"the dashboard does not show {wanted - queried}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus) "
                    "is not installed")
def test_promtool_accepts_the_rules_and_the_scrape_configuration() -> None:
    rules = subprocess.run(["promtool", "check", "rules", str(PROMETHEUS_DIR / "alerts.yml")],
                           capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout
