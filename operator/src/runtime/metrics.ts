// Prometheus metrics of one operator process (its own registry, so tests can run several).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly kubeRequests = new Counter({
    name: 'wharf_operator_kube_requests_total',
    help: 'Requests to the Kubernetes API, by method and status code.',
    labelNames: ['method', 'code'] as const,
    registers: [this.registry],
  });
  readonly reconciles = new Counter({
    name: 'wharf_operator_reconcile_total',
    help: 'Reconciles, by controller and result (success, error, requeue).',
    labelNames: ['controller', 'result'] as const,
    registers: [this.registry],
  });
  readonly reconcileSeconds = new Histogram({
    name: 'wharf_operator_reconcile_duration_seconds',
    help: 'Reconcile duration.',
    labelNames: ['controller'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'wharf_operator_workqueue_depth',
    help: 'Keys waiting in the work queue.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({ name: 'wharf_operator_leader', help: '1 while this process holds the leader lease.', registers: [this.registry] });
  readonly applies = new Counter({
    name: 'wharf_operator_applies_total',
    help: 'Owned objects by outcome: applied (changed or new) or unchanged (apply skipped).',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'wharf_operator_' });
  }

  observeRequest = (method: string, _path: string, status: number): void => {
    this.kubeRequests.inc({ method, code: String(status) });
  };
}
