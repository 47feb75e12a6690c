"""Lints and renders the Helm chart with every value set in helm/teams-voice-exporter/ci/
and checks what comes out; run by .ci/validate-deploy.sh inside its virtualenv.

- Helm: the real Helm v4 Go SDK (helm-python-sdk bundles it as a shared library): strict
  lint, values.schema.json, offline render.
- Kubernetes objects: kubernetes-validate's strict schemas (unknown fields refused) for the
  oldest (1.25, the chart's kubeVersion floor) and the newest Kubernetes it knows.
- ServiceMonitor and PrometheusRule: the JSON schema of the pydantic models that
  cloudcoil generates from the Prometheus Operator's CRDs (field names, types, enums,
  patterns), made strict here by refusing fields the CRD does not define.
- What the chart promises: non-root, read-only root filesystem, no capabilities, seccomp
  in every value set; Recreate with a volume; the rule files and dashboards exactly as in
  alerts/ and dashboards/; every value documented in the chart's README.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml
from cloudcoil.models.prometheus_operator import v1 as promop

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "teams-voice-exporter"
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
NAMESPACE = "monitoring"
RELEASE = "tve"

failures: list[str] = []
quiet = False


def fail(where: str, message: str) -> None:
    failures.append(f"{where}: {message}")
    if not quiet:
        print(f"FAIL {where}: {message}")


def strict(schema: object) -> object:
    """Refuses properties a schema does not define, as `kubectl apply --validate=strict`
    does, except where the CRD keeps unknown fields or declares a map."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", kind): jsonschema.Draft202012Validator(
        strict(model.model_json_schema(by_alias=True, mode="validation"))
    )
    for kind, model in (("ServiceMonitor", promop.ServiceMonitor), ("PrometheusRule", promop.PrometheusRule))
}


def validate_object(where: str, obj: dict) -> bool:
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in CRD_SCHEMAS:
        errors = sorted(CRD_SCHEMAS[key].iter_errors(obj), key=lambda e: list(e.absolute_path))
        for e in errors[:5]:
            fail(where, f"{obj['kind']} {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}")
        return not errors
    ok = True
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.utils.ValidationError as e:
            fail(where, f"{obj.get('kind')} against Kubernetes {version}: {'/'.join(map(str, e.path))}: {e.message[:300]}")
            ok = False
        except kubernetes_validate.utils.SchemaNotFoundError:
            fail(where, f"no schema for {key} in Kubernetes {version}")
            ok = False
    return ok


def self_test() -> None:
    """The validators must refuse what a cluster refuses, or a green run means nothing."""
    bad = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
         "spec": {"ports": [{"port": 1, "bogus": 1}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
         "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "args": "--demo"}]}}}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "x"},
         "spec": {"selector": {}, "endpoints": [{"port": "http", "interval": "1 minute"}]}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "x"},
         "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up", "severity": "page"}]}]}},
    ]
    global failures, quiet
    saved, failures, quiet = failures, [], True
    accepted = [obj["kind"] for obj in bad if validate_object("self-test", obj)]
    failures, quiet = saved, False
    for kind in accepted:
        fail("self-test", f"the validator accepted an invalid {kind}")
    if not accepted:
        print(f"self-test: all {len(bad)} invalid objects refused")


def documents(rendered: dict[str, str]) -> list[tuple[str, dict]]:
    out = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                out.append((template.split("/", 1)[1], doc))
    return out


def values_paths(values: object, prefix: str = "") -> list[str]:
    """Leaf value names (objects that are empty or hold free-form maps count as leaves)."""
    if isinstance(values, dict) and values and prefix not in FREE_FORM:
        return [p for k, v in values.items() for p in values_paths(v, f"{prefix}.{k}" if prefix else k)]
    return [prefix]


# Values that hold Kubernetes objects or free maps: documented as one entry.
FREE_FORM = {
    "podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe",
    "networkPolicy.egress.dns.ports", "networkPolicy.egress.https.ports",
}


def check_readme() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text().split("\n## Values\n", 1)[-1]
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.M))
    for path in values_paths(values):
        if path not in documented:
            fail("README.md", f"value {path} is not documented in the chart's README table")
    for path in documented:
        node = values
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                fail("README.md", f"documents {path}, which values.yaml does not have")
                break
            node = node[part]


def pod_checks(where: str, deploy: dict) -> None:
    pod = deploy["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if deploy["spec"].get("replicas") != 1:
        fail(where, "replicas must be 1")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(where, "pod seccompProfile is not RuntimeDefault")
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
            fail(where, f"container {c['name']} may run as root (runAsNonRoot not true)")
        if sc.get("runAsUser", psc.get("runAsUser", 1)) == 0:
            fail(where, f"container {c['name']} runs as UID 0")
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(where, f"container {c['name']} has a writable root filesystem")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(where, f"container {c['name']} allows privilege escalation")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []) or sc.get("capabilities", {}).get("add"):
            fail(where, f"container {c['name']} keeps capabilities")
        if "resources" not in c:
            fail(where, f"container {c['name']} has no resources")


def render_set(chart: Path, values_file: Path, label: str) -> dict[str, dict] | None:
    values = yaml.safe_load(values_file.read_text()) or {}
    where = f"{label}:{values_file.name}"
    lint = helm.lint(str(chart), values, strict=True, namespace=NAMESPACE)
    for m in lint["messages"]:
        if m["severity"] >= 2:
            fail(where, f"helm lint: {m['path']}: {m['error']}")
    for e in lint["errors"]:
        fail(where, f"helm lint: {e}")
    with helm.Chart.load(str(chart)) as c:
        try:
            c.validate_schema(values)
            rendered = c.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        except helm.HelmError as e:  # type: ignore[attr-defined]
            fail(where, f"render: {e}")
            return None
    objects: dict[str, dict] = {}
    for template, obj in documents(rendered):
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        # JSON schemas do not check names; the API server does (DNS-1123; 63 for Services).
        limit = 63 if obj["kind"] == "Service" else 253
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", obj["metadata"]["name"]) or len(obj["metadata"]["name"]) > limit:
            fail(where, f"{name} is not a valid object name")
        if name in objects:
            fail(where, f"{name} rendered twice")
        objects[name] = obj
        validate_object(f"{where} {template}", obj)
    deployments = [o for o in objects.values() if o["kind"] == "Deployment"]
    if len(deployments) != 1:
        fail(where, f"{len(deployments)} Deployments rendered")
    else:
        pod_checks(where, deployments[0])
    print(f"{where}: {len(objects)} objects: {', '.join(sorted(objects))}")
    return objects


def deployment(objects: dict) -> dict:
    return next(o for o in objects.values() if o["kind"] == "Deployment")


def container(objects: dict) -> dict:
    return deployment(objects)["spec"]["template"]["spec"]["containers"][0]


def expect(where: str, condition: bool, message: str) -> None:
    if not condition:
        fail(where, message)


def check_expectations(objects: dict[str, dict], values_file: str) -> None:
    """What each value set is for shows in what it renders."""
    where = values_file
    c = container(objects)
    args = c.get("args", [])
    env = {e["name"]: e for e in c.get("env", [])}
    pod = deployment(objects)["spec"]["template"]
    kinds = {o["kind"] for o in objects.values()}
    if values_file == "defaults-values.yaml":
        expect(where, not pod["spec"].get("volumes"), "mounts a Secret that nobody created")
        expect(where, "ServiceMonitor" not in kinds and "NetworkPolicy" not in kinds, "optional objects rendered by default")
    if values_file in ("existing-secret-values.yaml", "persistence-values.yaml", "prometheus-operator-values.yaml"):
        vols = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        expect(where, vols.get("credentials", {}).get("secret", {}).get("secretName") == "teams-voice-exporter-azure",
               "the existing Secret is not mounted")
        expect(where, "--azure.client-secret-file=/etc/teams-voice-exporter/credentials/client-secret" in args,
               "--azure.client-secret-file does not point at the mounted Secret")
        expect(where, "Secret" not in kinds, "creates a Secret although one exists")
        expect(where, env.get("AZURE_TENANT_ID", {}).get("value") == "00000000-0000-0000-0000-00000000d3e0", "AZURE_TENANT_ID not set")
    if values_file == "persistence-values.yaml":
        expect(where, deployment(objects)["spec"]["strategy"]["type"] == "Recreate", "strategy is not Recreate with a volume")
        expect(where, "--state.path=/var/lib/teams-voice-exporter/state.db" in args, "--state.path not passed")
        expect(where, "PersistentVolumeClaim" in kinds, "no PersistentVolumeClaim")
    if values_file == "workload-identity-values.yaml":
        sa = next(o for o in objects.values() if o["kind"] == "ServiceAccount")
        expect(where, pod["metadata"]["labels"].get("azure.workload.identity/use") == "true", "pod label azure.workload.identity/use missing")
        expect(where, sa["metadata"].get("annotations", {}).get("azure.workload.identity/client-id") == "00000000-0000-0000-0000-0000000c11e7",
               "ServiceAccount lacks azure.workload.identity/client-id")
        expect(where, "--azure.auth=workload-identity" in args, "--azure.auth=workload-identity not passed")
        expect(where, "Secret" not in kinds and not pod["spec"].get("volumes"), "a Secret is involved with workload identity")
        expect(where, not {"AZURE_CLIENT_ID", "AZURE_TENANT_ID"} & env.keys(), "sets what the webhook injects")
    if values_file == "workload-identity-no-webhook-values.yaml":
        expect(where, env.get("AZURE_FEDERATED_TOKEN_FILE", {}).get("value") == "/var/run/secrets/azure/tokens/azure-identity-token",
               "AZURE_FEDERATED_TOKEN_FILE not set")
        expect(where, {"AZURE_CLIENT_ID", "AZURE_TENANT_ID"} <= env.keys(), "AZURE_CLIENT_ID/AZURE_TENANT_ID not set")
        vols = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        token = vols.get("azure-identity-token", {}).get("projected", {}).get("sources", [{}])[0].get("serviceAccountToken", {})
        expect(where, token.get("audience") == "api://AzureADTokenExchange", "no projected token for Entra ID")
        expect(where, "azure.workload.identity/use" not in pod["metadata"]["labels"], "asks for a webhook that is not there")
    protected = any("--web.config.file" in a for a in args)
    for probe in ("livenessProbe", "readinessProbe"):
        kind = "tcpSocket" if protected else "httpGet"
        expect(where, kind in c.get(probe, {}), f"{probe} is not {kind} (web config {'on' if protected else 'off'})")
    if values_file == "chart-secret-certificate-values.yaml":
        expect(where, "Secret" in kinds, "no Secret created")
        expect(where, env.get("AZURE_CLIENT_CERTIFICATE_PATH", {}).get("value") == "/etc/teams-voice-exporter/credentials/client-certificate",
               "AZURE_CLIENT_CERTIFICATE_PATH not set")
        expect(where, "checksum/secrets" in pod["metadata"].get("annotations", {}), "no checksum annotation")
        for flag in ("--azure.auth=certificate", "--azure.cloud=usgov", "--poll.lookback=96h", "--graph.max-retries=3",
                     "--web.config.file=/etc/teams-voice-exporter/web/web-config.yml", "--log.format=json"):
            expect(where, flag in args, f"{flag} not passed")
    if values_file == "prometheus-operator-values.yaml":
        expect(where, "ServiceMonitor" in kinds, "no ServiceMonitor")
    if values_file == "dashboards-networkpolicy-values.yaml":
        expect(where, "--demo" in args, "--demo not passed")
        np = next((o for o in objects.values() if o["kind"] == "NetworkPolicy"), None)
        expect(where, np is not None, "no NetworkPolicy")
        if np:
            ports = sorted(p["port"] for rule in np["spec"]["egress"] for p in rule.get("ports", []))
            expect(where, ports == [53, 53, 443], f"egress ports {ports}, expected DNS and HTTPS only")
    if values_file == "managed-identity-values.yaml":
        np = next(o for o in objects.values() if o["kind"] == "NetworkPolicy")
        cidrs = [t["ipBlock"]["cidr"] for r in np["spec"]["egress"] for t in r.get("to", []) if "ipBlock" in t]
        expect(where, "169.254.169.254/32" in cidrs, "instance metadata service not allowed")


def source(obj: dict) -> str | None:
    return obj["metadata"].get("annotations", {}).get("teams-voice-exporter/source")


def check_sources(objects: dict[str, dict], where: str, chart: Path) -> None:
    """The rendered rules and dashboards are the chart's files, and those are the repo's."""
    rules = sorted((chart / "files" / "alerts").glob("*.rules.yml"))
    dashboards = sorted((chart / "files" / "dashboards").glob("*.json"))
    rendered_rules = [o for o in objects.values() if o["kind"] == "PrometheusRule"]
    rendered_maps = [o for o in objects.values() if o["kind"] == "ConfigMap"]
    if "prometheus-operator" in where:
        expect(where, len(rendered_rules) == len(rules), f"{len(rendered_rules)} PrometheusRules for {len(rules)} rule files")
        for path in rules:
            want = yaml.safe_load(path.read_text())["groups"]
            got = [r for r in rendered_rules if source(r) == f"alerts/{path.name}"]
            expect(where, len(got) == 1 and got[0]["spec"]["groups"] == want, f"PrometheusRule for {path.name} differs from the file")
    if "dashboards" in where:
        expect(where, len(rendered_maps) == len(dashboards), f"{len(rendered_maps)} ConfigMaps for {len(dashboards)} dashboards")
        for path in dashboards:
            got = [m for m in rendered_maps if source(m) == f"dashboards/{path.name}"]
            expect(where, len(got) == 1 and got[0]["data"].get(path.name) == path.read_text(),
                   f"ConfigMap of {path.name} is not the file byte for byte")
            expect(where, len(got) == 1 and got[0]["metadata"]["labels"].get("grafana_dashboard") == "1",
                   f"ConfigMap of {path.name} lacks grafana_dashboard: \"1\"")


def sample_chart(tmp: Path) -> Path:
    """A copy of the chart with one generated rule file and dashboard more, so that the
    PrometheusRule and dashboard templates are exercised even before the repository has
    any (the samples never enter the repository)."""
    copy_dir = tmp / "teams-voice-exporter"
    shutil.copytree(CHART, copy_dir)
    (copy_dir / "files" / "alerts").mkdir(parents=True, exist_ok=True)
    (copy_dir / "files" / "dashboards").mkdir(parents=True, exist_ok=True)
    (copy_dir / "files" / "alerts" / "zz-ci-sample.rules.yml").write_text(
        "# generated by .ci/validate_deploy.py\ngroups:\n  - name: ci-sample\n    rules:\n"
        "      - alert: CiSampleDown\n        expr: |\n          up{job=\"teams-voice\"} == 0\n"
        "        for: 5m\n        labels:\n          severity: warning\n"
        "        annotations:\n          summary: \"A \\\"quoted\\\" <summary> & more\"\n"
        "      - record: job:ci_sample:rate5m\n        expr: sum by (job) (rate(up[5m]))\n")
    (copy_dir / "files" / "dashboards" / "ZZ_CI_Sample.json").write_text(
        json.dumps({"title": "CI sample <&> \"quoted\"", "uid": "ci-sample", "panels": [], "schemaVersion": 39}, indent=2)
        + "\n")
    return copy_dir


def main() -> int:
    print(f"helm SDK {helm.helm_sdk_version()} (helm-c {helm.helm_c_version()}); Kubernetes schemas {', '.join(KUBE_VERSIONS)}")
    self_test()
    lint = helm.lint(str(CHART), strict=True)
    for m in lint["messages"]:
        print(f"helm lint --strict (defaults): severity {m['severity']} {m['path']}: {m['error']}")
        if m["severity"] >= 2:
            fail("helm lint", m["error"])
    for e in lint["errors"]:
        fail("helm lint", e)
    sets = sorted((CHART / "ci").glob("*-values.yaml"))
    if len(sets) < 6:
        fail("ci", f"only {len(sets)} value sets")
    for values_file in sets:
        objects = render_set(CHART, values_file, "chart")
        if objects:
            check_expectations(objects, values_file.name)
            check_sources(objects, values_file.name, CHART)
    with tempfile.TemporaryDirectory() as tmp:
        sample = sample_chart(Path(tmp))
        for name in ("prometheus-operator-values.yaml", "dashboards-networkpolicy-values.yaml"):
            objects = render_set(sample, CHART / "ci" / name, "chart+samples")
            if objects:
                check_sources(objects, name, sample)
    check_readme()
    # Broken values must be refused with a message, not rendered.
    for bad, needle in (({"poll": {"interval": "5 minutes"}}, "pattern"),
                        ({"azure": {"auth": "workload-identity"}}, "azure.clientId"),
                        ({"azure": {"auth": "secret", "existingSecret": "s", "clientSecret": "x"}}, "choose one"),
                        ({"replicas": 2}, "replicas"),
                        ({"demo": True, "persistence": {"enabled": True}}, "--state.path with --demo")):
        with helm.Chart.load(str(CHART)) as c:
            try:
                c.validate_schema(bad)
                c.render(bad, name=RELEASE, namespace=NAMESPACE)
                fail("refusals", f"{bad} was accepted")
            except helm.HelmError as e:  # type: ignore[attr-defined]
                expect("refusals", needle in str(e), f"{bad} refused without naming {needle!r}: {e}")
    total = len(sets) + 2
    if failures:
        print(f"\n{len(failures)} problem(s):", *failures, sep="\n  ")
        return 1
    print(f"chart: lint --strict clean; {total} renders validated; {len(sets)} value sets: non-root, read-only root filesystem")
    return 0


if __name__ == "__main__":
    sys.exit(main())
