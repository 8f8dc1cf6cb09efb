// Image reference helpers.

/** The version of an image: its tag, else the short digest, else "latest". */
export function imageVersion(image: string): string {
  const at = image.indexOf('@');
  const withoutDigest = at >= 0 ? image.slice(0, at) : image;
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.lastIndexOf(':');
  if (colon > lastSlash) return withoutDigest.slice(colon + 1);
  if (at >= 0) return image.slice(at + 1).replace(/^sha256:/, '').slice(0, 12);
  return 'latest';
}
