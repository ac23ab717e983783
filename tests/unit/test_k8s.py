"""The Kubernetes manifests against the code and the operators' resource
fields: the broker topology is the one `zhzx up` applies, every service and
route is deployed, and the RabbitMQ and MongoDB resources use only fields
their operators define, with the required ones (their schemas are not
packaged on a registry this build reaches; cert-manager and Prometheus
Operator resources are validated against their schemas by make check)."""
from pathlib import Path

import yaml

from deploy.local import SERVICES, restricted_calls
from services.common.broker_users import link_permissions, permissions, topic_permissions
from services.common.openapi import routes
from services.openapi import service_classes

ROOT = Path(__file__).resolve().parent.parent.parent
BASE = ROOT / "k8s" / "base"

# spec fields of the operators' resources (Messaging Topology Operator
# v1beta1, RabbitMQ Cluster Operator v1beta1, MongoDB Community Operator v1):
# (allowed, required)
SPECS = {
    "User": ({"tags", "importCredentialsSecret", "rabbitmqClusterReference"},
             {"rabbitmqClusterReference"}),
    "Permission": ({"vhost", "user", "userReference", "permissions",
                    "rabbitmqClusterReference"},
                   {"vhost", "permissions", "rabbitmqClusterReference"}),
    "TopicPermission": ({"vhost", "user", "userReference", "permissions",
                         "rabbitmqClusterReference"},
                        {"vhost", "permissions", "rabbitmqClusterReference"}),
    "Exchange": ({"name", "vhost", "type", "durable", "autoDelete", "arguments",
                  "rabbitmqClusterReference", "deletionPolicy"},
                 {"name", "rabbitmqClusterReference"}),
    "Federation": ({"name", "vhost", "uriSecret", "prefetch-count", "reconnectDelay",
                    "trustUserId", "exchange", "ackMode", "expires", "messageTTL", "maxHops",
                    "queue", "rabbitmqClusterReference"},
                   {"name", "uriSecret", "rabbitmqClusterReference"}),
    "Policy": ({"name", "vhost", "pattern", "applyTo", "priority", "definition",
                "rabbitmqClusterReference"},
               {"name", "pattern", "definition", "rabbitmqClusterReference"}),
    "RabbitmqCluster": ({"replicas", "image", "imagePullSecrets", "service", "persistence",
                         "resources", "affinity", "tolerations", "rabbitmq", "tls",
                         "override", "skipPostDeploySteps", "terminationGracePeriodSeconds",
                         "delayStartSeconds", "secretBackend"}, set()),
    "MongoDBCommunity": ({"members", "arbiters", "type", "version",
                          "featureCompatibilityVersion", "replicaSetHorizons", "security",
                          "users", "statefulSet", "agent", "additionalMongodConfig",
                          "automationConfig", "additionalConnectionStringConfig",
                          "prometheus", "memberConfig"},
                         {"members", "type", "version", "security", "users"}),
}


def load(*paths):
    return [d for p in paths for d in yaml.safe_load_all(p.read_text())
            if d and "metadata" in d]   # not kustomization.yaml


def manifests():
    return load(*sorted(BASE.glob("*.yaml")), *sorted((BASE / "generated").glob("*.yaml")),
                *sorted((ROOT / "k8s" / "overlays").glob("*/link.yaml")))


def test_the_operators_resources_use_only_their_fields_and_the_required_ones():
    seen = set()
    for doc in manifests():
        if doc["kind"] not in SPECS:
            continue
        seen.add(doc["kind"])
        allowed, required = SPECS[doc["kind"]]
        keys = set(doc["spec"])
        assert keys <= allowed, (doc["kind"], doc["metadata"]["name"], keys - allowed)
        assert required <= keys, (doc["kind"], doc["metadata"]["name"], required - keys)
        ref = doc["spec"].get("rabbitmqClusterReference")
        assert ref is None or ref == {"name": "broker"}
    assert seen == set(SPECS)


def test_the_broker_topology_is_the_one_zhzx_up_applies():
    docs = {(d["kind"], d["metadata"]["name"]): d.get("spec") for d in manifests()}
    restricted = restricted_calls()
    for service in SERVICES:
        user = f"svc-{service}"
        assert docs["Permission", user]["permissions"] == permissions(service)
        assert docs["User", user]["importCredentialsSecret"] == {"name": f"broker-{user}"}
        topics = topic_permissions(service, restricted)
        assert [docs["TopicPermission", f"{user}-rpc"]["permissions"]] == topics \
            if topics else ("TopicPermission", f"{user}-rpc") not in docs
    links = [spec for (kind, name), spec in docs.items()
             if kind == "Permission" and name.startswith("link-")]
    assert len(links) == 2 and all(spec["permissions"] == link_permissions() for spec in links)
    assert {d["name"] for (k, _), d in docs.items() if k == "Exchange"} == {"zhzx.up", "zhzx.down"}


def test_every_service_is_deployed_with_its_probes_budget_and_autoscaler():
    docs = load(BASE / "generated" / "workloads.yaml")
    for service, offset in SERVICES.items():
        [deploy] = [d for d in docs if d["kind"] == "Deployment"
                    and d["metadata"]["name"] == service]
        [container] = deploy["spec"]["template"]["spec"]["containers"]
        assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "http", "containerPort": 8000 + offset} in container["ports"]
        for kind in ("Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
            assert [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == service]


def test_every_api_route_reaches_its_service_through_the_ingress():
    import re
    rules = []
    for doc in load(BASE / "generated" / "ingress.yaml"):
        for path in doc["spec"]["rules"][0]["http"]["paths"]:
            rules.append((path["pathType"], path["path"], path["backend"]["service"]["name"]))
    for cls in service_classes():
        for _, route in routes(cls):
            if not route.startswith("/api/v1/") or \
                    (cls.name, route) == ("provincial", "/api/v1/deliveries"):
                continue
            concrete = re.sub(r"{[^}]+}", "x", route)
            exact = [s for t, p, s in rules if t == "ImplementationSpecific"
                     and re.match(p, concrete)]
            prefix = [s for t, p, s in rules if t == "Prefix" and
                      (concrete == p or concrete.startswith(p + "/"))]
            target = (exact or prefix or [None])[0]
            if route.startswith("/api/v1/deliveries") and cls.name == "provincial":
                continue   # operators reach the adapter's queue directly (NOT_ROUTED)
            assert target == cls.name, (cls.name, route, target)
