/**
 * Cosign's tag scheme for a subject's accessories: in the subject's repository, the tag
 * `sha256-<hex>.sig|.att|.sbom` names the signature, attestation or SBOM of
 * `sha256:<hex>`. The one definition retention, signed-artifact protection and garbage
 * collection share, as SQL fragments over column expressions.
 */
export const ACCESSORY_TAG_PATTERN = String.raw`^sha256-[0-9a-f]{64}\.(sig|att|sbom)$`;

const SUFFIXES = ['sig', 'att', 'sbom'] as const;

/** SQL: `tag` (a tag name expression) is an accessory tag of `digest` (a digest expression). */
export function isAccessoryTagOf(tag: string, digest: string, suffixes: readonly (typeof SUFFIXES)[number][] = SUFFIXES): string {
  return `${tag} IN (${suffixes.map((s) => `replace(${digest}, ':', '-') || '.${s}'`).join(', ')})`;
}

/** SQL: the subject digest an accessory tag `tag` names (only meaningful when it matches ACCESSORY_TAG_PATTERN). */
export function accessorySubject(tag: string): string {
  return `'sha256:' || substr(${tag}, 8, 64)`;
}
