// Operator settings from flags and environment variables (flags win).
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';

export interface OperatorOptions {
  kubeconfig?: string;
  /** Namespace of the operator itself: the leader Lease lives here. */
  namespace: string;
  /** Only watch this namespace (default: all). */
  watchNamespace?: string;
  identity: string;
  leaderElect: boolean;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  healthAddr: string;
  defaultImage: string;
  /** The operator's own image, run by the node agent's DaemonSet (its second entry point). */
  nodeAgentImage: string;
  resyncMs: number;
  workers: number;
  logLevel: string;
  stepDelayMs: number;
}

export const VERSION = '0.1.0';
export const DEFAULT_REGISTRY_IMAGE = `ghcr.io/wharf-dev/wharf-registry:${VERSION}`;
export const DEFAULT_OPERATOR_IMAGE = `ghcr.io/wharf-dev/wharf-operator:${VERSION}`;

const HELP = `wharf-operator: reconciles wharf.dev Registry resources.

  --kubeconfig PATH          kubeconfig (default: $KUBECONFIG, else in-cluster)
  --namespace NS             operator namespace, holds the leader Lease ($POD_NAMESPACE, default wharf-system)
  --watch-namespace NS       only reconcile this namespace ($WATCH_NAMESPACE, default: all)
  --identity ID              leader-election identity ($POD_NAME, default hostname + random suffix)
  --leader-elect BOOL        use a Lease for leader election (default true)
  --lease-duration SECONDS   15     --renew-deadline SECONDS 10     --retry-period SECONDS 2
  --health-addr HOST:PORT    /healthz, /readyz and /metrics (default :8081)
  --registry-image IMAGE     image for Registries without spec.image ($WHARF_REGISTRY_IMAGE)
  --node-agent-image IMAGE   the operator's image, run by nodeMirror's DaemonSet ($WHARF_NODE_AGENT_IMAGE)
  --resync SECONDS           re-reconcile every Registry this often (default 600)
  --workers N                concurrent reconciles (default 2)
  --log-level LEVEL          pino level ($LOG_LEVEL, default info)
`;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): OperatorOptions {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    }
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf('=');
    if (eq > 0) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    else flags.set(arg.slice(2), argv[++i] ?? '');
  }
  const known = ['kubeconfig', 'namespace', 'watch-namespace', 'identity', 'leader-elect', 'lease-name', 'lease-duration', 'renew-deadline', 'retry-period', 'health-addr', 'registry-image', 'node-agent-image', 'resync', 'workers', 'log-level'];
  for (const k of flags.keys()) if (!known.includes(k)) throw new Error(`unknown flag --${k}`);
  const seconds = (name: string, dflt: number) => {
    const v = Number(flags.get(name) ?? dflt);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a number of seconds`);
    return Math.round(v * 1000);
  };
  const bool = (v: string | undefined, dflt: boolean) => (v === undefined ? dflt : !['false', '0', 'no'].includes(v.toLowerCase()));
  return {
    kubeconfig: flags.get('kubeconfig') ?? env.KUBECONFIG,
    namespace: flags.get('namespace') ?? env.POD_NAMESPACE ?? 'wharf-system',
    watchNamespace: flags.get('watch-namespace') ?? (env.WATCH_NAMESPACE || undefined),
    identity: flags.get('identity') ?? env.POD_NAME ?? `${hostname()}-${randomBytes(4).toString('hex')}`,
    leaderElect: bool(flags.get('leader-elect'), true),
    leaseName: flags.get('lease-name') ?? 'wharf-operator-leader',
    leaseDurationMs: seconds('lease-duration', 15),
    renewDeadlineMs: seconds('renew-deadline', 10),
    retryPeriodMs: seconds('retry-period', 2),
    healthAddr: flags.get('health-addr') ?? ':8081',
    defaultImage: flags.get('registry-image') ?? env.WHARF_REGISTRY_IMAGE ?? DEFAULT_REGISTRY_IMAGE,
    nodeAgentImage: flags.get('node-agent-image') ?? env.WHARF_NODE_AGENT_IMAGE ?? DEFAULT_OPERATOR_IMAGE,
    resyncMs: seconds('resync', 600),
    workers: Number(flags.get('workers') ?? 2),
    logLevel: flags.get('log-level') ?? env.LOG_LEVEL ?? 'info',
    stepDelayMs: Number(env.WHARF_OPERATOR_STEP_DELAY_MS ?? 0),
  };
}
