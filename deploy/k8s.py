"""The generated part of ``k8s/base``: the services' workloads, the broker's
declarative topology and the API routes, from the same data the code uses
(the service list, the broker users' permissions, the HTTP routes), so the
manifests cannot drift from the code.

    python -m deploy.k8s            # write k8s/base/generated/*.yaml
    python -m deploy.k8s --check    # fail when the committed files differ

Hand-written next to them: the broker cluster, the database, the network
policy and the monitoring (k8s/base/*.yaml), and the overlays.
"""
import re
import sys
from pathlib import Path

import yaml

from services.common.broker_users import permissions, topic_permissions, user_name
from services import docgen
from services.common.names import DOWN, UP

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "k8s" / "base" / "generated"
IMAGE = "zhzx:0.1.0"
PART_OF = {"app.kubernetes.io/part-of": "zhzx"}
BROKER = "broker"             # the RabbitmqCluster (its Service has the same name)
METRICS_PORT = 9100
# requests and limits per service: proposals loads the TF-IDF routing model
RESOURCES = {
    "members": ({"cpu": "100m", "memory": "192Mi"}, {"cpu": "1", "memory": "512Mi"}),
    "proposals": ({"cpu": "200m", "memory": "320Mi"}, {"cpu": "1", "memory": "768Mi"}),
    "liaison": ({"cpu": "100m", "memory": "192Mi"}, {"cpu": "1", "memory": "512Mi"}),
    "notify": ({"cpu": "100m", "memory": "160Mi"}, {"cpu": "1", "memory": "384Mi"}),
    "provincial": ({"cpu": "50m", "memory": "160Mi"}, {"cpu": "500m", "memory": "384Mi"}),
}


# checkov's findings we accept, each with its reason (make check runs checkov)
CHECKOV_SKIPS = {
    "checkov.io/skip1": "CKV_K8S_43=the release pins the image by digest "
                        "(kustomize edit set image with the pushed digest)",
    "checkov.io/skip2": "CKV_K8S_35=nameko reads its configuration from the environment; "
                        "secrets never reach logs, events or metrics (docs/security.md)",
}


def service_ports():
    from deploy.local import SERVICES
    return {name: 8000 + offset for name, offset in SERVICES.items()}


def labels(name, component="service"):
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component,
            **PART_OF}


def deployment(name, port):
    requests_, limits = RESOURCES[name]
    select = {"app.kubernetes.io/name": name}
    probe = {"httpGet": {"path": "/healthz", "port": "http"}}
    env = [
        {"name": "WEB_SERVER_ADDRESS", "value": f"0.0.0.0:{port}"},
        {"name": "METRICS_ADDRESS", "value": f"0.0.0.0:{METRICS_PORT}"},
        # the broker user's password (the Topology Operator's User imports it)
        {"name": "BROKER_PASSWORD", "valueFrom": {"secretKeyRef": {
            "name": f"broker-{user_name(name)}", "key": "password"}}},
        {"name": "AMQP_URI", "value": f"amqp://{user_name(name)}:$(BROKER_PASSWORD)@{BROKER}:5672/"},
        # the database user's connection string (the MongoDB operator writes it)
        {"name": "MONGO_URI", "valueFrom": {"secretKeyRef": {
            "name": f"mongodb-svc-{name}", "key": "connectionString.standard"}}},
    ]
    if name == "provincial":
        env.append({"name": "PROVINCE_SECRET", "valueFrom": {"secretKeyRef": {
            "name": "province-app", "key": "secret", "optional": True}}})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels(name), "annotations": CHECKOV_SKIPS},
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": select},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                        "runAsGroup": 10001, "fsGroup": 10001,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    # a clean stop releases the duties' leases (docs/kernel.md)
                    "terminationGracePeriodSeconds": 30,
                    "topologySpreadConstraints": [
                        {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": when,
                         "labelSelector": {"matchLabels": select}}
                        for key, when in (("kubernetes.io/hostname", "DoNotSchedule"),
                                          ("topology.kubernetes.io/zone", "ScheduleAnyway"))],
                    "containers": [{
                        "name": name,
                        "image": IMAGE,
                        "imagePullPolicy": "Always",
                        "args": [f"services.{name}.service"],
                        "ports": [{"name": "http", "containerPort": port},
                                  {"name": "metrics", "containerPort": METRICS_PORT}],
                        "envFrom": [{"configMapRef": {"name": "platform"}},
                                    {"secretRef": {"name": "platform-secrets"}}],
                        "env": env,
                        "startupProbe": dict(probe, periodSeconds=5, failureThreshold=30),
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                                           "periodSeconds": 10, "timeoutSeconds": 5,
                                           "failureThreshold": 3},
                        "livenessProbe": dict(probe, periodSeconds=20, timeoutSeconds=5,
                                              failureThreshold=3),
                        "resources": {"requests": requests_, "limits": limits},
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "privileged": False,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def service(name, port):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": labels(name)},
            "spec": {"selector": {"app.kubernetes.io/name": name},
                     "ports": [{"name": "http", "port": port, "targetPort": "http"},
                               {"name": "metrics", "port": METRICS_PORT,
                                "targetPort": "metrics"}]}}


def disruption_budget(name):
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "labels": labels(name)},
            "spec": {"minAvailable": 1,
                     "selector": {"matchLabels": {"app.kubernetes.io/name": name}}}}


def autoscaler(name):
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "labels": labels(name)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": name},
                     "minReplicas": 2, "maxReplicas": 6,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization",
                                                   "averageUtilization": 70}}}],
                     # the plenary's burst: scale up at once, down slowly
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}}}}


def workloads():
    docs = []
    for name, port in service_ports().items():
        docs += [deployment(name, port), service(name, port), disruption_budget(name),
                 autoscaler(name)]
    return docs


def cluster_ref():
    return {"name": BROKER}


def topology():
    """Users and permissions of every service, and the link exchanges: what
    ``zhzx up`` applies through the management API locally
    (services/common/broker_users.py). Each link's user is in the overlay
    that declares the link (``link-<peer org>``)."""
    from deploy.local import SERVICES, restricted_calls
    restricted = restricted_calls()
    docs = []
    for name in SERVICES:
        user = user_name(name)
        docs.append({"apiVersion": "rabbitmq.com/v1beta1", "kind": "User",
                     "metadata": {"name": user, "labels": labels(name, "broker-user")},
                     "spec": {"tags": [], "rabbitmqClusterReference": cluster_ref(),
                              "importCredentialsSecret": {"name": f"broker-{user}"}}})
        docs.append({"apiVersion": "rabbitmq.com/v1beta1", "kind": "Permission",
                     "metadata": {"name": user, "labels": labels(name, "broker-user")},
                     "spec": {"vhost": "/", "userReference": {"name": user},
                              "permissions": permissions(name),
                              "rabbitmqClusterReference": cluster_ref()}})
        for topic in topic_permissions(name, restricted):
            docs.append({"apiVersion": "rabbitmq.com/v1beta1", "kind": "TopicPermission",
                         "metadata": {"name": f"{user}-rpc", "labels": labels(
                             name, "broker-user")},
                         "spec": {"vhost": "/", "userReference": {"name": user},
                                  "permissions": topic,
                                  "rabbitmqClusterReference": cluster_ref()}})
    for exchange in (UP, DOWN):
        docs.append({"apiVersion": "rabbitmq.com/v1beta1", "kind": "Exchange",
                     "metadata": {"name": exchange.replace(".", "-"),
                                  "labels": labels("links", "broker-topology")},
                     "spec": {"name": exchange, "type": "topic", "durable": True,
                              "autoDelete": False, "vhost": "/",
                              "rabbitmqClusterReference": cluster_ref()}})
    return docs


# the provincial adapter's delivery queue is for operators (port-forward or
# `zhzx province deliveries`), not routed: notify owns /api/v1/deliveries
NOT_ROUTED = {("provincial", "/api/v1/deliveries")}


def routes():
    """Ingress paths: each service's first path segments under /api/v1/; a
    prefix two services serve is an error unless listed in ``NOT_ROUTED``."""
    from services.common.openapi import routes as service_routes
    from services.openapi import service_classes
    owners = {}
    for cls in service_classes():
        for _, path in service_routes(cls):
            if path.startswith("/api/v1/"):
                prefix = "/api/v1/" + path.split("/")[3].split("{")[0]
                owners.setdefault(prefix, []).append((cls.name, path))
    rules, exact = {}, {}
    for prefix, served in owners.items():
        first = served[0][0]
        for name, path in served:
            if name == first or (name, prefix) in NOT_ROUTED:
                continue
            if "{" not in path:
                raise SystemExit(f"{prefix} is served by {first} and {name}")
            # another service's route under this prefix (/api/v1/members/{id}/stations
            # is liaison's): matched exactly, by a regular expression
            exact["^" + re.sub(r"{[^}]+}", "[^/]+", path) + "$"] = name
        rules[prefix] = first

    def ingress(name, paths, path_type, annotations=None):
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "labels": labels("api", "ingress"), "annotations": dict(
                    {"cert-manager.io/cluster-issuer": "zhzx-issuer"}, **(annotations or {}))},
                "spec": {"ingressClassName": "nginx",
                         "tls": [{"hosts": ["zhzx.example.invalid"], "secretName": "api-tls"}],
                         "rules": [{"host": "zhzx.example.invalid", "http": {"paths": [
                             {"path": path, "pathType": path_type, "backend": {"service": {
                                 "name": service, "port": {"name": "http"}}}}
                             for path, service in sorted(paths.items())]}}]}}
    return [ingress("api", rules, "Prefix"),
            ingress("api-exact", exact, "ImplementationSpecific",
                    {"nginx.ingress.kubernetes.io/use-regex": "true"})]


def database():
    """A MongoDB replica set of 3 through the MongoDB Community Operator, one
    user per service with readWrite on its own database only; the operator
    writes each user's connection string into ``mongodb-svc-<service>``."""
    from deploy.local import SERVICES
    users = [{"name": f"svc-{name}", "db": "admin",
              "passwordSecretRef": {"name": f"mongodb-svc-{name}-password"},
              "roles": [{"name": "readWrite", "db": f"zhzx_{name}"}],
              "scramCredentialsSecretName": f"mongodb-svc-{name}-scram",
              "connectionStringSecretName": f"mongodb-svc-{name}"} for name in SERVICES]
    return [{"apiVersion": "mongodbcommunity.mongodb.com/v1", "kind": "MongoDBCommunity",
             "metadata": {"name": "mongodb", "labels": labels("mongodb", "database")},
             "spec": {
                 "members": 3, "type": "ReplicaSet", "version": "7.0.14",
                 "security": {"authentication": {"modes": ["SCRAM"]},
                              "tls": {"enabled": True, "certificateKeySecretRef": {
                                  "name": "mongodb-tls"}, "caConfigMapRef": {
                                  "name": "mongodb-ca"}}},
                 "users": users,
                 "additionalMongodConfig": {"storage.wiredTiger.engineConfig.cacheSizeGB": 0.5},
                 "prometheus": {"username": "metrics", "passwordSecretRef": {
                     "name": "mongodb-metrics-password"}},
                 "statefulSet": {"spec": {
                     "volumeClaimTemplates": [{"metadata": {"name": "data-volume"}, "spec": {
                         "accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "20Gi"}}}}],
                     "template": {"spec": {
                         "containers": [{"name": "mongod", "resources": {
                             "requests": {"cpu": "500m", "memory": "1Gi"},
                             "limits": {"cpu": "2", "memory": "2Gi"}}}],
                         "topologySpreadConstraints": [{
                             "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                             "whenUnsatisfiable": "DoNotSchedule",
                             "labelSelector": {"matchLabels": {"app": "mongodb-svc"}}}]}}}}}}]


def monitoring():
    """Scraping (every service's metrics port, the broker's prometheus
    endpoint) and the alert rules of k8s/monitoring/rules.yaml, for the
    Prometheus Operator (the monitoring namespace's Prometheus selects them by
    the ``release: monitoring`` label); and the dashboards of
    k8s/monitoring/dashboards (deploy/dashboards.py) as ConfigMaps."""
    select = dict(PART_OF, release="monitoring")
    rules = yaml.safe_load((ROOT / "k8s" / "monitoring" / "rules.yaml").read_text())
    return [
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
         "metadata": {"name": "services", "labels": select},
         "spec": {"selector": {"matchLabels": {"app.kubernetes.io/component": "service"}},
                  "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics",
                                           "interval": "30s"}]}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
         "metadata": {"name": "broker", "labels": select},
         "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": BROKER}},
                  "endpoints": [{"port": "prometheus", "path": "/metrics",
                                 "interval": "30s"}]}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
         "metadata": {"name": "zhzx", "labels": select},
         "spec": rules},
    ] + [
        # Grafana's dashboard sidecar loads ConfigMaps labelled grafana_dashboard
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": f"dashboard-{path.stem}",
                      "labels": dict(PART_OF, grafana_dashboard="1")},
         "data": {path.name: path.read_text()}}
        for path in sorted((ROOT / "k8s" / "monitoring" / "dashboards").glob("*.json"))]


FILES = {"workloads.yaml": workloads, "broker-topology.yaml": topology,
         "database.yaml": database, "ingress.yaml": routes, "monitoring.yaml": monitoring}
HEADER = "# generated by `python -m deploy.k8s` from the code; do not edit\n"


def render(docs):
    return HEADER + yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


def main(argv=None):
    return docgen.sync({OUT / name: render(make()) for name, make in FILES.items()}, argv,
                       __doc__.splitlines()[0], "python -m deploy.k8s")


if __name__ == "__main__":
    sys.exit(main())
