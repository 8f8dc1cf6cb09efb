import { ociError } from '../oci/errors.js';

// A project is a repository's first path segment, so it follows that component's grammar.
const PROJECT_NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const ROBOT_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const USERNAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/;
// Group names come from identity providers (OIDC claims, LDAP): allow their usual separators.
const GROUP_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._:@=+-]*$/;

function check(kind: string, value: string, pattern: RegExp, max: number): string {
  if (value.length > max || !pattern.test(value)) {
    throw ociError('INVALID_REQUEST', { [kind]: value.slice(0, 100) }, { message: `invalid ${kind} name ${JSON.stringify(value.slice(0, 100))}: must match ${pattern.source} and be at most ${max} characters` });
  }
  return value;
}

export const checkProjectName = (name: string) => check('project', name, PROJECT_NAME, 255);
export const checkGroupName = (name: string) => check('group', name, GROUP_NAME, 255);
export const checkRobotName = (name: string) => check('robot', name, ROBOT_NAME, 64);
export const checkUsername = (name: string) => check('user', name, USERNAME, 64);

export function projectRobotName(project: string, name: string): string {
  return `robot$${project}+${name}`;
}

export function systemRobotName(name: string): string {
  return `robot$${name}`;
}
