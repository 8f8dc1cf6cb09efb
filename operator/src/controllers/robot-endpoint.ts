// One robot in the registry's management API: project robots live under
// /projects/{project}/robots/{robot}, system robots under /robots/{robot}. The RobotAccount
// controller talks to either through this, so it never branches on the level itself.
import { must, type RegistryClient, type Schemas } from '../registry-client/client.js';
import type { DesiredRobot, LiveRobot } from '../resources/robot-account/render.js';
import { UserError } from '../runtime/user-error.js';

export type RotateOptions = { graceSeconds: number } | { keepPrevious: true };

function live(robot: Schemas['Robot']): LiveRobot {
  return {
    id: robot.id,
    name: robot.name,
    description: robot.description,
    disabled: robot.disabled,
    durationDays: robot.durationDays,
    expiresAt: robot.expiresAt,
    permissions: robot.permissions,
    managedBy: robot.managedBy,
    rotatedAt: robot.rotatedAt,
    graceEndsAt: robot.graceEndsAt,
  };
}

export class RobotEndpoint {
  constructor(
    private readonly client: RegistryClient,
    private readonly robot: Pick<DesiredRobot, 'project' | 'name' | 'fullName'>,
  ) {}

  private get project(): string | null {
    return this.robot.project;
  }

  /** The robot, or undefined when it (or its project) does not exist. */
  async get(signal: AbortSignal): Promise<LiveRobot | undefined> {
    const { api } = this.client;
    const res =
      this.project === null
        ? await api.GET('/api/v1/robots/{robot}', { params: { path: { robot: this.robot.name } }, signal })
        : await api.GET('/api/v1/projects/{project}/robots/{robot}', { params: { path: { project: this.project, robot: this.robot.name } }, signal });
    if (res.response.status === 404) return undefined;
    return live(must(`get robot ${this.robot.fullName}`, res));
  }

  /** Creates (the secret comes back, once) or updates the robot. */
  async put(body: DesiredRobot['body'], signal: AbortSignal): Promise<{ robot: LiveRobot; secret?: string }> {
    const { api } = this.client;
    const res =
      this.project === null
        ? await api.PUT('/api/v1/robots/{robot}', { params: { path: { robot: this.robot.name } }, body, signal })
        : await api.PUT('/api/v1/projects/{project}/robots/{robot}', { params: { path: { project: this.project, robot: this.robot.name } }, body, signal });
    if (res.response.status === 404 && this.project !== null) throw new UserError('ProjectNotFound', `project "${this.project}" does not exist in the registry`);
    const data = must(`put robot ${this.robot.fullName}`, res);
    return 'secret' in data ? { robot: live(data.robot), secret: data.secret } : { robot: live(data) };
  }

  /** A new secret (shown once). */
  async rotate(options: RotateOptions, signal: AbortSignal): Promise<{ robot: LiveRobot; secret: string }> {
    const { api } = this.client;
    const res =
      this.project === null
        ? await api.POST('/api/v1/robots/{robot}/rotate', { params: { path: { robot: this.robot.name } }, body: options, signal })
        : await api.POST('/api/v1/projects/{project}/robots/{robot}/rotate', { params: { path: { project: this.project, robot: this.robot.name } }, body: options, signal });
    const data = must(`rotate robot ${this.robot.fullName}`, res);
    return { robot: live(data.robot), secret: data.secret };
  }

  /** Deletes the robot; one that is already gone is fine. */
  async delete(signal: AbortSignal): Promise<void> {
    const { api } = this.client;
    const res =
      this.project === null
        ? await api.DELETE('/api/v1/robots/{robot}', { params: { path: { robot: this.robot.name } }, signal })
        : await api.DELETE('/api/v1/projects/{project}/robots/{robot}', { params: { path: { project: this.project, robot: this.robot.name } }, signal });
    if (res.response.status !== 404) must(`delete robot ${this.robot.fullName}`, res);
  }
}
