// Validates the custom resources of rendered overlays against the published
// schemas of their operators, as packaged on npm by kubernetes-models
// (@kubernetes-models/cert-manager and @kubernetes-models/prometheus-operator,
// versions pinned in the Makefile): Certificate, PodMonitor, ServiceMonitor,
// PrometheusRule. The RabbitMQ and MongoDB operators publish no schema package
// on a registry this build can reach; their resources are checked for the
// fields those operators require by tests/unit/test_k8s.py. Core kinds are
// kubernetes-validate's. Exits 1 on any invalid resource. Used by `make check`.
import fs from 'fs';
import yaml from 'js-yaml';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';

const MODELS = {
  'cert-manager.io/v1/Certificate': Certificate,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};
let failed = 0;
for (const file of process.argv.slice(2)) {
  const counts = {};
  for (const doc of yaml.loadAll(fs.readFileSync(file, 'utf8'))) {
    if (!doc) continue;
    const key = `${doc.apiVersion}/${doc.kind}`;
    const Model = MODELS[key];
    if (!Model) continue;
    try {
      new Model(doc).validate();
      counts[doc.kind] = (counts[doc.kind] || 0) + 1;
    } catch (e) {
      failed += 1;
      console.log(`${file}: ${doc.kind} ${doc.metadata && doc.metadata.name}: ${e.message}`);
    }
  }
  console.log(`${file}: valid ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ')}`);
}
process.exit(failed ? 1 : 0);
