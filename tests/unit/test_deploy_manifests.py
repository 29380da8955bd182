"""The deployment examples in deploy/ and docker-compose.yml, checked without a cluster or a cloud:
parsed with PyYAML/json, and the fields that make them work held to what `nightshift serve` offers."""

from __future__ import annotations

import ast
import itertools
import json
import re
from pathlib import Path
from typing import Any

import yaml

from dispatcher.cli import build_parser
from tests.support.pgserver import ROOT

DEPLOY = ROOT / "deploy"
TRIGGER_PATH = "/api/v1/internal/scheduled-tasks/"


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()) if d]


def by_kind(kind: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        found += [d for d in documents(path.name) if d.get("kind") == kind]
    return found


def container(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    pod = spec["jobTemplate"]["spec"]["template"] if workload["kind"] == "CronJob" else spec["template"]
    [only] = pod["spec"]["containers"]
    return dict(only)


def cli_accepts(args: list[str]) -> None:
    """The arguments parse with the real `nightshift` parser (flags that exist, values of the right type)."""
    build_parser().parse_args(args)


def test_kustomization_lists_existing_files() -> None:
    kustomization = documents("kustomization.yaml")[0]
    for resource in kustomization["resources"]:
        assert (DEPLOY / "kubernetes" / resource).is_file(), resource


def test_serve_deployment_probes_and_secret() -> None:
    [deployment] = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "nightshift-serve"]
    serve = container(deployment)
    cli_accepts(serve["args"])
    port = int(serve["args"][serve["args"].index("--port") + 1])
    assert serve["ports"][0]["containerPort"] == port
    assert serve["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert serve["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in serve["env"]}
    assert env["NIGHTSHIFT_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "nightshift",
                                                                           "key": "database-url"}
    ref = env["NIGHTSHIFT_WEBHOOK_SECRET_REF"]["value"]
    assert ref.startswith("file:")
    mount = serve["volumeMounts"][0]["mountPath"]
    volume = deployment["spec"]["template"]["spec"]["volumes"][0]
    assert ref == f"file:{mount}/{volume['secret']['items'][0]['path']}"
    assert volume["secret"]["items"][0]["key"] in documents("secret.yaml")[0]["stringData"]
    # the pod gets longer to stop than serve takes to drain, preStop included
    shutdown = int(serve["args"][serve["args"].index("--shutdown-timeout") + 1])
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > shutdown + 5
    [service] = by_kind("Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_dispatcher_deployment() -> None:
    [deployment] = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "nightshift-dispatcher"]
    dispatcher = container(deployment)
    cli_accepts(dispatcher["args"])
    assert dispatcher["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert "--metrics-port" in dispatcher["args"]
    shutdown = int(dispatcher["args"][dispatcher["args"].index("--shutdown-timeout") + 1])
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > shutdown


def test_cronjob_calls_the_trigger_for_every_scheduled_kind() -> None:
    [cronjob] = by_kind("CronJob")
    assert cronjob["spec"]["schedule"] == "* * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    trigger = container(cronjob)
    env = {e["name"]: e for e in trigger["env"]}
    assert env["NIGHTSHIFT_TRIGGER_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "trigger-token"
    assert set(env["NIGHTSHIFT_KINDS"]["value"].split()) == scheduled_kinds()
    assert env["NIGHTSHIFT_URL"]["value"].startswith("http://nightshift-serve.")
    assert TRIGGER_PATH in trigger["args"][0] and "Authorization: Bearer" in trigger["args"][0]


def scheduled_kinds() -> set[str]:
    """The kinds sql/data/task_kinds.sql marks scheduled."""
    lines = (ROOT / "sql" / "data" / "task_kinds.sql").read_text().splitlines()
    kinds = set()
    for line, following in itertools.pairwise(lines):
        # a row reads: ('kind', 'description',  then on the next line: scheduled, target_type, ...
        if (match := re.match(r"^\s+\('([a-z-]+)',", line)) and following.strip().startswith("true,"):
            kinds.add(match.group(1))
    assert kinds, "no scheduled kind found in sql/data/task_kinds.sql"
    return kinds


def test_keda_scaler_targets_the_dispatcher_with_a_queue_depth_query() -> None:
    [scaled] = documents("keda-scaledobject.yaml")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "nightshift-dispatcher"
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    metadata = trigger["metadata"]
    assert "nightshift.tasks" in metadata["query"] and "status = 'running'" in metadata["query"]
    assert float(metadata["targetQueryValue"]) > 0
    dispatcher = container(next(d for d in by_kind("Deployment")
                                if d["metadata"]["name"] == "nightshift-dispatcher"))
    assert metadata["connectionFromEnv"] in {e["name"] for e in dispatcher["env"]}


def test_docker_compose_has_serve_next_to_the_other_services() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "dispatcher", "serve"} <= services.keys()
    serve = services["serve"]
    cli_accepts(serve["command"])
    assert serve["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert serve["environment"]["NIGHTSHIFT_WEBHOOK_SECRET_REF"] == "env:GITHUB_WEBHOOK_SECRET"
    assert "/readyz" in " ".join(serve["healthcheck"]["test"])


def test_eventbridge_template() -> None:
    template = json.loads((DEPLOY / "aws-eventbridge" / "template.json").read_text())
    resources = template["Resources"]
    types = {name: r["Type"] for name, r in resources.items()}
    schedules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert {json.loads(s["Target"]["Input"])["kind"] for s in schedules} == scheduled_kinds()
    for schedule in schedules:
        assert schedule["ScheduleExpression"] == "rate(1 minute)"
        assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert schedule["Target"]["Arn"] == {"Fn::GetAtt": ["Bus", "Arn"]}
        parameters = schedule["Target"]["EventBridgeParameters"]
    [rule] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    assert rule["EventPattern"] == {"source": [parameters["Source"]],
                                    "detail-type": [parameters["DetailType"]]}
    [target] = rule["Targets"]
    assert types[target["Arn"]["Fn::GetAtt"][0]] == "AWS::Events::ApiDestination"
    assert target["HttpParameters"]["PathParameterValues"] == ["$.detail.kind"]
    destination = resources["ApiDestination"]["Properties"]
    assert destination["HttpMethod"] == "POST"
    assert destination["InvocationEndpoint"]["Fn::Sub"].endswith(TRIGGER_PATH + "*")
    auth = resources["Connection"]["Properties"]
    assert auth["AuthorizationType"] == "API_KEY"
    key = auth["AuthParameters"]["ApiKeyAuthParameters"]
    assert key["ApiKeyName"] == "Authorization"
    assert key["ApiKeyValue"]["Fn::Sub"].startswith("Bearer {{resolve:secretsmanager:")
    # each role may do exactly its one step
    roles = [resources[name]["Properties"] for name, kind in types.items() if kind == "AWS::IAM::Role"]
    actions = {role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]:
               role["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"] for role in roles}
    assert actions == {"events.amazonaws.com": "events:InvokeApiDestination",
                       "scheduler.amazonaws.com": "events:PutEvents"}


def test_azure_function_app() -> None:
    folder = DEPLOY / "azure-functions"
    host = json.loads((folder / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    tree = ast.parse((folder / "function_app.py").read_text())
    [timer] = [d for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) for d in node.decorator_list
               if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "timer_trigger"]
    keywords = {k.arg: ast.literal_eval(k.value) for k in timer.keywords}
    fields = keywords["schedule"].split()
    assert len(fields) == 6 and fields[0] == "0"  # NCRONTAB has seconds: second 0 of every minute
    assert keywords["use_monitor"] is True
    settings = json.loads((folder / "local.settings.json.example").read_text())["Values"]
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert set(settings["NIGHTSHIFT_KINDS"].split()) == scheduled_kinds()
    assert "azure-functions" in (folder / "requirements.txt").read_text()
    assert Path(folder / "nightshift_trigger.py").is_file()
