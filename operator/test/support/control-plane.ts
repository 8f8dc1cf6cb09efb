// A real Kubernetes control plane for tests, started the way controller-runtime's envtest does:
// etcd, kube-apiserver (self-signed serving certificate, client-certificate admin, service-account
// keys, RBAC authorization, an audit log of writes and Lease reads) and kube-controller-manager (garbage collector,
// deployment and replicaset controllers, so owner-reference GC and Deployment status are real).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { createPki, issueCertificate, type Pki } from './pki.js';
import { writeKubeconfig } from './kubeconfig.js';
import { freePort, startProcess, stopProcess, tail, waitFor, type ManagedProcess } from './processes.js';

export interface ControlPlaneInfo {
  workDir: string;
  server: string;
  adminKubeconfig: string;
  caCert: string;
  auditLog: string;
  pkiDir: string;
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  # Reads of Leases too: each one is a leader-election attempt, which the tests count.
  - level: Metadata
    verbs: [get]
    resources:
      - group: coordination.k8s.io
        resources: [leases]
  - level: None
`;

export class ControlPlane {
  private processes: ManagedProcess[] = [];
  info?: ControlPlaneInfo;

  constructor(
    private readonly binDir: string,
    private readonly workDir: string,
    private readonly installCrds?: (adminKubeconfig: string) => Promise<void>,
  ) {}

  async start(): Promise<ControlPlaneInfo> {
    const workDir = resolve(this.workDir);
    const pkiDir = join(workDir, 'pki');
    mkdirSync(pkiDir, { recursive: true });
    const pki = createPki(pkiDir);
    const admin = issueCertificate(pki, 'admin', '/O=system:masters/CN=wharf-test-admin');
    const kcm = issueCertificate(pki, 'kcm', '/CN=system:kube-controller-manager');

    const [etcdClient, etcdPeer, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const server = `https://127.0.0.1:${apiPort}`;
    const auditLog = join(workDir, 'audit.log');
    writeFileSync(join(workDir, 'audit-policy.yaml'), AUDIT_POLICY);

    const etcd = startProcess('etcd', join(this.binDir, 'etcd'), [
      '--name=default',
      `--data-dir=${join(workDir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ], join(workDir, 'etcd.log'));
    this.processes.push(etcd);
    await this.until(etcd, 'etcd health', async () => ((await fetch(`http://127.0.0.1:${etcdClient}/health`)).ok ? true : undefined), 30_000);

    const apiserver = startProcess('kube-apiserver', join(this.binDir, 'kube-apiserver'), [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      `--secure-port=${apiPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none',
      `--cert-dir=${join(workDir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.saPublicKey}`,
      `--service-account-signing-key-file=${pki.saPrivateKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      `--audit-policy-file=${join(workDir, 'audit-policy.yaml')}`,
      `--audit-log-path=${auditLog}`,
      '--audit-log-mode=blocking',
      '--audit-log-format=json',
      '--profiling=false',
      // Compact etcd every 5 s instead of 5 min, so that old resourceVersions expire (410 Gone)
      // within a test run, as they do in a long-running cluster.
      '--etcd-compaction-interval=5s',
      // PodTemplates are watched straight from etcd (no watch cache), so a watch from a compacted
      // resourceVersion gets 410 Gone; the informer test uses them.
      '--watch-cache-sizes=podtemplates#0',
      '--v=1',
    ], join(workDir, 'kube-apiserver.log'));
    this.processes.push(apiserver);
    const adminKubeconfig = writeKubeconfig(join(workDir, 'admin.kubeconfig'), server, pki.caCert, { clientCert: admin.cert, clientKey: admin.key });
    await this.until(apiserver, 'kube-apiserver /readyz', async () => ((await this.get(pki, server, '/readyz', admin)) === 200 ? true : undefined), 90_000);

    // Install the CRDs before the controller manager starts, as in a cluster where the operator
    // was installed earlier: its garbage collector then knows the Registry kind from the start
    // instead of finding it at its next 30 s discovery resync.
    await this.installCrds?.(adminKubeconfig);

    const kcmKubeconfig = writeKubeconfig(join(workDir, 'kcm.kubeconfig'), server, pki.caCert, { clientCert: kcm.cert, clientKey: kcm.key });
    const controllerManager = startProcess('kube-controller-manager', join(this.binDir, 'kube-controller-manager'), [
      `--kubeconfig=${kcmKubeconfig}`,
      '--secure-port=0',
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki.saPrivateKey}`,
      `--root-ca-file=${pki.caCert}`,
      '--controllers=garbage-collector-controller,deployment-controller,replicaset-controller,serviceaccount-controller,namespace-controller,disruption-controller,persistentvolumeclaim-protection-controller',
      '--concurrent-gc-syncs=5',
      '--v=1',
    ], join(workDir, 'kube-controller-manager.log'));
    this.processes.push(controllerManager);
    // The serviceaccount controller creates "default" in every namespace: proof that the
    // controller manager is up, authenticated and authorized.
    await this.until(controllerManager, 'kube-controller-manager (default ServiceAccount)', async () =>
      (await this.get(pki, server, '/api/v1/namespaces/default/serviceaccounts/default', admin)) === 200 ? true : undefined, 90_000);

    this.info = { workDir, server, adminKubeconfig, caCert: pki.caCert, auditLog, pkiDir };
    return this.info;
  }

  async stop(): Promise<void> {
    for (const p of [...this.processes].reverse()) await stopProcess(p);
    this.processes = [];
  }

  /** Waits for `check`, failing at once if the process exits meanwhile. */
  private async until(p: ManagedProcess, what: string, check: () => Promise<true | undefined>, timeoutMs: number): Promise<void> {
    const exited = p.exited.then((code) => {
      throw new Error(`exited with ${code}`);
    });
    await Promise.race([waitFor(what, check, timeoutMs, 250), exited]).catch((err) => this.fail(err, p));
  }

  private async fail(err: unknown, p: ManagedProcess): Promise<never> {
    const logs = tail(p.logFile);
    await this.stop();
    throw new Error(`${p.name} did not start: ${String(err)}\n--- ${p.logFile}\n${logs}`);
  }

  private get(pki: Pki, server: string, path: string, client: { cert: string; key: string }): Promise<number> {
    return new Promise((resolvePromise, reject) => {
      const req = request(
        `${server}${path}`,
        { ca: readFileSync(pki.caCert), cert: readFileSync(client.cert), key: readFileSync(client.key), timeout: 5000 },
        (res) => {
          res.resume();
          resolvePromise(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
  }
}
