/**
 * deploy/kubernetes/ checked against the code rather than against copies of it: probe and scrape paths
 * are the service's routes, every environment name is a variable the config accepts and the values load,
 * ports line up from container to Service to ServiceMonitor, the grace period outlasts preStop plus the
 * drain, and every selector finds the Deployment's pods. No cluster is needed (none exists here).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig, VARIABLES } from '../../src/config.js';
import { OPS_ROUTES } from '../../src/http/ops-routes.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../deploy/kubernetes');

type Doc = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: any };

const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
const docs: Doc[] = files
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((f) => yaml.loadAll(readFileSync(path.join(DIR, f), 'utf8')) as Doc[])
  .filter(Boolean);
const one = (kind: string): Doc => {
  const found = docs.filter((d) => d.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};

const deployment = one('Deployment');
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const configMap = one('ConfigMap');
const secret = one('Secret');
const service = one('Service');
const env: Record<string, string> = { ...configMap.data, ...secret.stringData };
const httpPort = container.ports.find((p: { name: string }) => p.name === 'http');

describe('deploy/kubernetes', () => {
  it('lists every manifest in the kustomization, each parseable with a kind and a name', () => {
    const kustomization = yaml.load(readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    expect([...kustomization.resources].sort()).toEqual(files.filter((f) => f !== 'kustomization.yaml').sort());
    for (const d of docs) {
      expect(d.apiVersion, JSON.stringify(d.metadata)).toBeTruthy();
      expect(d.metadata.name).toBe('recommendation-service');
    }
  });

  it('probes real routes: liveness /health, readiness /ready, on the container port', () => {
    expect(container.livenessProbe.httpGet.path).toBe(OPS_ROUTES.health);
    expect(container.startupProbe.httpGet.path).toBe(OPS_ROUTES.health);
    expect(container.readinessProbe.httpGet.path).toBe(OPS_ROUTES.ready);
    for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
      expect(probe.httpGet.port).toBe('http');
    }
  });

  it('sets only variables the config accepts, and the config loads with them', () => {
    const names = [
      ...Object.keys(configMap.data),
      ...Object.keys(secret.stringData),
      ...container.env.map((e: { name: string }) => e.name),
    ];
    for (const name of names) expect(Object.keys(VARIABLES), name).toContain(name);
    const config = loadConfig({ ...env, WORKERS: '2' });
    expect(config.PORT).toBe(httpPort.containerPort);
  });

  it('derives WORKERS from the CPU limit, in whole cores', () => {
    const workers = container.env.find((e: { name: string }) => e.name === 'WORKERS');
    expect(workers.valueFrom.resourceFieldRef).toEqual({ containerName: container.name, resource: 'limits.cpu', divisor: '1' });
    expect(container.resources.limits.cpu).toBeDefined();
    expect(container.resources.requests.cpu).toBeDefined();
    expect(container.resources.limits.memory).toBeDefined();
  });

  it('gives the workers time to drain: grace period > preStop sleep + SHUTDOWN_TIMEOUT_MS', () => {
    const [cmd, seconds] = container.lifecycle.preStop.exec.command as string[];
    expect(cmd).toBe('sleep');
    const shutdownMs = Number(env.SHUTDOWN_TIMEOUT_MS ?? VARIABLES.SHUTDOWN_TIMEOUT_MS!.default);
    // After the drain the primary gives a stuck worker 2 s more, then closes its pools (2 s): primary.ts.
    const primaryMarginMs = 4000;
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(seconds) * 1000 + shutdownMs + primaryMarginMs);
  });

  it('routes the Service, HPA, PDB and ServiceMonitor to the Deployment and its port', () => {
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    expect(service.spec.selector).toEqual(labels);
    const servicePort = service.spec.ports.find((p: { targetPort: string | number }) =>
      p.targetPort === 'http' || p.targetPort === httpPort.containerPort);
    expect(servicePort).toBeDefined();

    const hpa = one('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment.metadata.name });
    expect(deployment.spec.replicas, 'the HPA owns the replica count').toBeUndefined();
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);

    const pdb = one('PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual(labels);
    expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas); // a node drain can always proceed

    const monitor = one('ServiceMonitor');
    expect(monitor.spec.selector.matchLabels).toEqual(service.metadata.labels);
    expect(monitor.spec.endpoints[0].port).toBe(servicePort.name);
    expect(monitor.spec.endpoints[0].path).toBe(OPS_ROUTES.metrics);
    const annotations = deployment.spec.template.metadata.annotations;
    expect(annotations['prometheus.io/path']).toBe(OPS_ROUTES.metrics);
    expect(Number(annotations['prometheus.io/port'])).toBe(httpPort.containerPort);
  });

  it('runs the image docker compose builds, as the Dockerfile\'s user', () => {
    const compose = yaml.load(readFileSync(path.join(DIR, '../../docker-compose.yml'), 'utf8')) as { services: Record<string, { image?: string }> };
    expect(Object.values(compose.services).map((s) => s.image)).toContain(container.image);
    expect(readFileSync(path.join(DIR, '../../Dockerfile'), 'utf8')).toMatch(/^USER node$/m);
    expect(pod.securityContext.runAsUser).toBe(1000); // `node` in the official Node images
  });

  it('keeps URLs and keys out of the ConfigMap', () => {
    for (const [name, value] of Object.entries(configMap.data as Record<string, string>)) {
      expect(name, 'secret-looking key in the ConfigMap').not.toMatch(/URL|KEY|PASSWORD|NODES/);
      expect(value).not.toMatch(/:\/\//);
    }
  });
});
