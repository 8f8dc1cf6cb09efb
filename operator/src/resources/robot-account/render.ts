// What a RobotAccount asks of the registry, and how the registry's robot differs from it. Pure
// functions: the controller reads, calls these, and writes.
import type { RobotAccountObject } from '../../api/types.js';
import { robotFullName, robotManager, robotShortName } from './names.js';

export interface RobotPermission {
  namespace: string;
  access: { resource: string; action: string }[];
}

/** The body of the registry's create-or-update robot call, plus where the robot lives. */
export interface DesiredRobot {
  /** The project of a project robot; null for a system robot. */
  project: string | null;
  /** The name in the API path (without prefix). */
  name: string;
  fullName: string;
  body: {
    description: string;
    disabled: boolean;
    durationDays: number;
    permissions: RobotPermission[];
    managedBy: string;
  };
}

/** The registry's side of a robot, as the management API shows it. */
export interface LiveRobot {
  id: string;
  name: string;
  description: string;
  disabled: boolean;
  durationDays: number;
  expiresAt: string | null;
  permissions: RobotPermission[];
  managedBy: string | null;
  /** When the current secret was set. */
  rotatedAt: string;
  /** Until when the secret the last rotation replaced still authenticates. */
  graceEndsAt: string | null;
}

export function renderRobot(obj: RobotAccountObject): DesiredRobot {
  const spec = obj.spec;
  return {
    project: spec.level === 'project' ? spec.project! : null,
    name: robotShortName(obj),
    fullName: robotFullName(obj),
    body: {
      description: spec.description ?? '',
      disabled: spec.disabled ?? false,
      durationDays: spec.expiresInDays ?? -1,
      permissions: spec.permissions.map((p) => ({ namespace: p.project, access: p.access.map(({ resource, action }) => ({ resource, action })) })),
      managedBy: robotManager(obj),
    },
  };
}

const permissionText = (p: RobotPermission) => `${p.namespace}: ${p.access.map((a) => `${a.resource}:${a.action}`).join(', ')}`;
const permissionsText = (ps: RobotPermission[]) => ps.map(permissionText).join('; ') || 'none';

/** Differences between the registry's robot and the desired one, one human-readable line each, in a stable order. */
export function robotDifferences(live: LiveRobot, desired: DesiredRobot): string[] {
  const want = desired.body;
  const out: string[] = [];
  if (live.description !== want.description) out.push(`description ${JSON.stringify(live.description)} → ${JSON.stringify(want.description)}`);
  if (live.disabled !== want.disabled) out.push(want.disabled ? 'disabled' : 'enabled');
  if (live.durationDays !== want.durationDays) out.push(`expiry ${live.durationDays} → ${want.durationDays} days`);
  if (permissionsText(live.permissions) !== permissionsText(want.permissions)) out.push(`permissions [${permissionsText(live.permissions)}] → [${permissionsText(want.permissions)}]`);
  return out;
}
