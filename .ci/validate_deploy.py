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
  alerts/ and dashboards/; every value documented in the chart's README; in the sharded
  mode (a StatefulSet) the downward-API environment, a claim per shard, a
  PodDisruptionBudget, the tenants file mounted, no AZURE_TENANT_ID, and a Kubernetes API
  token only with a Role that can do nothing but read its own StatefulSet.
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
    "networkPolicy.egress.kubernetesApi.ports",
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


def pod_checks(where: str, deploy: dict, values: dict) -> None:
    pod = deploy["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if deploy["kind"] == "Deployment" and deploy["spec"].get("replicas") != 1:
        fail(where, "replicas must be 1")
    if deploy["kind"] == "StatefulSet":
        shards = values.get("sharding", {}).get("shards", 2)
        if deploy["spec"].get("replicas") != shards:
            fail(where, f"StatefulSet replicas {deploy['spec'].get('replicas')}, expected sharding.shards = {shards}")
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


def render_set(chart: Path, values_file: Path, label: str, overrides: dict | None = None,
               variant: str = "") -> dict[str, dict] | None:
    values = merged(yaml.safe_load(values_file.read_text()) or {}, overrides or {})
    where = f"{label}:{values_file.name}{'+' + variant if variant else ''}"
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
    workloads = [o for o in objects.values() if o["kind"] in ("Deployment", "StatefulSet")]
    if len(workloads) != 1:
        fail(where, f"{len(workloads)} Deployments and StatefulSets rendered, expected one")
    else:
        pod_checks(where, workloads[0], values)
        token_checks(where, objects, workloads[0])
    print(f"{where}: {len(objects)} objects: {', '.join(sorted(objects))}")
    return objects


def merged(base: dict, over: dict) -> dict:
    """Values as Helm merges a second values file over a first: maps deeply, the rest replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def token_checks(where: str, objects: dict, workload: dict) -> None:
    """The ServiceAccount token reaches the pod only where the exporter calls the Kubernetes
    API (--shard.auto reading its StatefulSet), and then it can read that one object."""
    pod = workload["spec"]["template"]["spec"]
    args = pod["containers"][0].get("args", [])
    reads_api = "--shard.auto" in args and not any(a.startswith("--total-shards") for a in args)
    for o in objects.values():
        if o["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            fail(where, f"{o['kind']}/{o['metadata']['name']}: the exporter needs no cluster-wide permission")
        if o["kind"] == "ServiceAccount":
            expect(where, o.get("automountServiceAccountToken") is False, "the ServiceAccount mounts its token in every pod")
    roles = [o for o in objects.values() if o["kind"] == "Role"]
    bindings = [o for o in objects.values() if o["kind"] == "RoleBinding"]
    expect(where, pod.get("automountServiceAccountToken") is reads_api,
           f"automountServiceAccountToken is {pod.get('automountServiceAccountToken')}, expected {reads_api} "
           f"({'--shard.auto reads its StatefulSet' if reads_api else 'the exporter never calls the Kubernetes API'})")
    if not reads_api:
        expect(where, not roles and not bindings, "a Role or RoleBinding without a pod that calls the Kubernetes API")
        return
    expect(where, len(roles) == 1 and len(bindings) == 1, f"{len(roles)} Roles and {len(bindings)} RoleBindings, expected one each")
    for role in roles:
        want = [{"apiGroups": ["apps"], "resources": ["statefulsets"],
                 "resourceNames": [workload["metadata"]["name"]], "verbs": ["get"]}]
        expect(where, role.get("rules") == want,
               f"Role {role['metadata']['name']} grants {role.get('rules')}, more or other than get on its own StatefulSet")
    for binding in bindings:
        expect(where, binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                             "name": roles[0]["metadata"]["name"] if roles else None},
               "the RoleBinding does not bind the Role")
        expect(where, binding.get("subjects") == [{"kind": "ServiceAccount", "name": pod["serviceAccountName"],
                                                  "namespace": NAMESPACE}],
               "the RoleBinding's subject is not the pod's ServiceAccount alone")


def tenants_checks(where: str, objects: dict, values: dict) -> None:
    """A tenants file (many tenants), and the sharded StatefulSet that divides it."""
    workload = deployment(objects)
    pod = workload["spec"]["template"]
    c = pod["spec"]["containers"][0]
    args = c.get("args", [])
    env = {e["name"]: e for e in c.get("env", [])}
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    kinds = [o["kind"] for o in objects.values()]
    tenants = values.get("tenants", {})
    sharded = values.get("sharding", {}).get("enabled", False)
    persistent = values.get("persistence", {}).get("enabled", False)

    expect(where, "--config.file=/etc/teams-voice-exporter/tenants/tenants.yml" in args, "--config.file not passed")
    expect(where, "AZURE_TENANT_ID" not in env, "AZURE_TENANT_ID set although the tenants come from the file")
    expect(where, mounts.get("tenants", {}).get("mountPath") == "/etc/teams-voice-exporter/tenants"
           and mounts.get("tenants", {}).get("readOnly") is True and "subPath" not in mounts.get("tenants", {}),
           "the tenants file is not mounted read-only as a directory at /etc/teams-voice-exporter/tenants")
    cm_volume = volumes.get("tenants", {}).get("configMap", {})
    key = tenants.get("key", "tenants.yml") if tenants.get("existingConfigMap") else "tenants.yml"
    expect(where, cm_volume.get("items") == [{"key": key, "path": "tenants.yml"}], f"the tenants volume does not map key {key} to tenants.yml")
    maps = {o["metadata"]["name"]: o for o in objects.values() if o["kind"] == "ConfigMap"}
    if tenants.get("existingConfigMap"):
        expect(where, cm_volume.get("name") == tenants["existingConfigMap"], "the existing tenants ConfigMap is not mounted")
        expect(where, cm_volume.get("name") not in maps, "renders a ConfigMap over the user's")
        expect(where, "checksum/tenants" not in pod["metadata"].get("annotations", {}), "a checksum of a ConfigMap the chart does not hold")
    else:
        cm = maps.get(cm_volume.get("name"))
        expect(where, cm is not None, f"the mounted ConfigMap {cm_volume.get('name')} is not rendered")
        if cm:
            expect(where, yaml.safe_load(cm["data"].get("tenants.yml", "")) == {"tenants": tenants["list"]},
                   "the rendered tenants file is not tenants.list")
        expect(where, ("checksum/tenants" in pod["metadata"].get("annotations", {})) == tenants.get("rolloutOnChange", True),
               "checksum/tenants annotation does not follow tenants.rolloutOnChange")
    secret_dirs = []
    for i, s in enumerate(tenants.get("secrets", [])):
        vol = volumes.get(f"tenant-secret-{i}", {}).get("secret", {})
        mount = mounts.get(f"tenant-secret-{i}", {})
        expect(where, vol.get("secretName") == s["name"] and vol.get("defaultMode") == 0o440,
               f"Secret {s['name']} is not a volume readable by the exporter's group only")
        expect(where, mount.get("mountPath") == s["mountPath"] and mount.get("readOnly") is True,
               f"Secret {s['name']} is not mounted read-only at {s['mountPath']}")
        secret_dirs.append(s["mountPath"].rstrip("/") + "/")
    for tenant in tenants.get("list", []):
        for field in ("client_secret_file", "client_certificate_file", "federated_token_file"):
            if field in tenant:
                expect(where, any(tenant[field].startswith(d) for d in secret_dirs),
                       f"tenant {tenant['id']}: {field} {tenant[field]} is in no mounted Secret")
    expect(where, ("--web.enable-lifecycle" in args) == values.get("web", {}).get("enableLifecycle", False),
           "--web.enable-lifecycle does not follow web.enableLifecycle")

    if not sharded:
        expect(where, workload["kind"] == "Deployment", "a StatefulSet without sharding")
        expect(where, not {"POD_INDEX", "--shard.auto"} & (env.keys() | set(args)), "sharding flags without sharding")
        return
    sts = workload
    expect(where, sts["kind"] == "StatefulSet", "sharding without a StatefulSet")
    expect(where, "Deployment" not in kinds, "a Deployment beside the StatefulSet")
    expect(where, sts["spec"].get("podManagementPolicy") == "Parallel", "podManagementPolicy is not Parallel")
    service = next((o for o in objects.values() if o["kind"] == "Service"), None)
    expect(where, service is not None and sts["spec"].get("serviceName") == service["metadata"]["name"]
           and service["spec"].get("clusterIP") == "None", "serviceName is not the chart's headless Service")
    expect(where, "--shard.auto" in args, "--shard.auto not passed")
    for name, path in (("POD_INDEX", "metadata.labels['apps.kubernetes.io/pod-index']"),
                       ("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        expect(where, env.get(name, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == path,
               f"{name} is not the downward API's {path}")
    if values.get("sharding", {}).get("explicitTotal"):
        expect(where, f"--total-shards={sts['spec']['replicas']}" in args, "--total-shards is not the StatefulSet's replicas")
    pdbs = [o for o in objects.values() if o["kind"] == "PodDisruptionBudget"]
    expect(where, len(pdbs) == 1 and pdbs[0]["spec"].get("maxUnavailable") == 1
           and pdbs[0]["spec"]["selector"] == sts["spec"]["selector"], "no PodDisruptionBudget of one shard at a time for the shards")
    expect(where, "PersistentVolumeClaim" not in kinds and "state" not in volumes, "a shared claim beside the shards' own")
    templates = {t["metadata"]["name"]: t for t in sts["spec"].get("volumeClaimTemplates", [])}
    if persistent:
        p = values["persistence"]
        claim = templates.get("state", {}).get("spec", {})
        expect(where, claim.get("resources", {}).get("requests", {}).get("storage") == p.get("size", "1Gi")
               and claim.get("storageClassName") == p.get("storageClass"),
               "no volumeClaimTemplate 'state' of persistence.size and persistence.storageClass")
        expect(where, "helm.sh/chart" not in templates.get("state", {}).get("metadata", {}).get("labels", {}),
               "the claim template carries the chart version, so every chart upgrade would try to change it (immutable)")
        expect(where, mounts.get("state", {}).get("mountPath") == p.get("mountPath", "/var/lib/teams-voice-exporter"),
               "the shard's claim is not mounted at persistence.mountPath")
        expect(where, any(a.startswith("--state.path=") for a in args), "--state.path not passed")
    else:
        expect(where, not templates, "claim templates without persistence.enabled")
    sm = next((o for o in objects.values() if o["kind"] == "ServiceMonitor"), None)
    if sm:
        endpoint = sm["spec"]["endpoints"][0]
        expect(where, sm["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items(),
               "the ServiceMonitor does not select the Service")
        expect(where, (endpoint.get("relabelings") or [{}])[0] == {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_name"],
                                                                  "targetLabel": "instance"},
               "the ServiceMonitor does not name each shard's target by its pod")
    np = next((o for o in objects.values() if o["kind"] == "NetworkPolicy"), None)
    if np and not values.get("sharding", {}).get("explicitTotal"):
        ports = {p["port"] for rule in np["spec"]["egress"] for p in rule.get("ports", [])}
        expect(where, {443, 6443} <= ports, "the NetworkPolicy keeps the shards from the Kubernetes API")


def deployment(objects: dict) -> dict:
    """The exporter's workload: the Deployment, or the StatefulSet of shards."""
    return next(o for o in objects.values() if o["kind"] in ("Deployment", "StatefulSet"))


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
            values = yaml.safe_load(values_file.read_text()) or {}
            if values.get("tenants", {}).get("list") or values.get("tenants", {}).get("existingConfigMap"):
                tenants_checks(values_file.name, objects, values)
    # The sharded value set with each of its alternatives changed.
    sharded = CHART / "ci" / "statefulset-values.yaml"
    variants = {
        "explicit-total": {"sharding": {"explicitTotal": True}},
        "existing-configmap": {"tenants": {"list": [], "existingConfigMap": "provider-tenants", "key": "tenants.yaml",
                                           "secrets": []}},
        "no-persistence-reload": {"persistence": {"enabled": False}, "tenants": {"rolloutOnChange": False},
                                  "web": {"enableLifecycle": False}},
        "deployment": {"sharding": {"enabled": False}},
        "workload-identity-no-tenant-id": {"azure": {"auth": "workload-identity", "existingSecret": ""},
                                           "workloadIdentity": {"webhook": False}},
    }
    for variant, overrides in variants.items():
        objects = render_set(CHART, sharded, "chart", overrides, variant)
        if objects:
            values = merged(yaml.safe_load(sharded.read_text()), overrides)
            tenants_checks(f"statefulset-values.yaml+{variant}", objects, values)
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
                        ({"demo": True, "persistence": {"enabled": True}}, "--state.path with --demo"),
                        ({"sharding": {"enabled": True}}, "needs a tenants file"),
                        ({"demo": True, "tenants": {"list": [{"id": "a"}]}}, "simulated tenant"),
                        ({"tenants": {"list": [{"id": "a"}], "existingConfigMap": "c"}}, "choose one"),
                        ({"tenants": {"list": [{"id": "a", "nmae": "x"}]}}, "nmae"),
                        ({"tenants": {"list": [{"id": "a", "name": "x"}, {"id": "b", "name": "x"}]}}, "used twice"),
                        ({"tenants": {"list": [{"id": "a"}, {"id": "A"}]}}, "listed twice"),
                        ({"tenants": {"list": [{"id": "a", "client_id": "c"}]}}, "exactly one of"),
                        ({"tenants": {"list": [{"id": "a", "client_secret_file": "/etc/tve/a/secret"}]}}, "without client_id"),
                        ({"tenants": {"list": [{"id": "a", "client_id": "c", "client_secret_file": "/etc/tve/a/secret"}]}},
                         "in no mounted directory"),
                        ({"tenants": {"list": [{"id": "a"}]}, "sharding": {"enabled": True},
                          "service": {"type": "NodePort"}}, "headless"),
                        ({"tenants": {"list": [{"id": "a"}]}, "sharding": {"enabled": True},
                          "persistence": {"enabled": True, "existingClaim": "x"}}, "claim of its own"),
                        ({"tenants": {"list": [{"id": "a"}]}, "sharding": {"enabled": True, "shards": 0}}, "shards")):
        with helm.Chart.load(str(CHART)) as c:
            try:
                c.validate_schema(bad)
                c.render(bad, name=RELEASE, namespace=NAMESPACE)
                fail("refusals", f"{bad} was accepted")
            except helm.HelmError as e:  # type: ignore[attr-defined]
                expect("refusals", needle in str(e), f"{bad} refused without naming {needle!r}: {e}")
    total = len(sets) + len(variants) + 2
    if failures:
        print(f"\n{len(failures)} problem(s):", *failures, sep="\n  ")
        return 1
    print(f"chart: lint --strict clean; {total} renders validated; {len(sets)} value sets: non-root, read-only root filesystem")
    return 0


if __name__ == "__main__":
    sys.exit(main())
