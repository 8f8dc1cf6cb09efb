import { PERMISSIONS, PUBLIC_PERMISSIONS, ROLE_PERMISSIONS, ROLES, ROBOT_GRANTABLE, SYSTEM_PERMISSIONS } from './policy.js';

/** The permission matrix as a markdown table, for the README (a test keeps the README in step). */
export function permissionTable(): string {
  const columns = [...ROLES, 'public (anyone)', 'robot (grantable)'];
  const mark = (held: boolean) => (held ? '✓' : '');
  const rows = PERMISSIONS.map((p) =>
    [`\`${p}\``, ...ROLES.map((r) => mark(ROLE_PERMISSIONS[r].includes(p))), mark(PUBLIC_PERMISSIONS.includes(p)), mark(ROBOT_GRANTABLE.includes(p))].join(' | '),
  );
  return [
    `| permission | ${columns.join(' | ')} |`,
    `| --- |${columns.map(() => ' --- |').join('')}`,
    ...rows.map((r) => `| ${r} |`),
    '',
    `System administrators hold every permission above in every project, plus: ${SYSTEM_PERMISSIONS.map((p) => `\`${p}\``).join(', ')}.`,
  ].join('\n');
}
