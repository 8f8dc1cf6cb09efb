// Assertions shared by the client tests: a client that must fail, and a layout a client wrote.
import { expect } from 'vitest';
import type { Image } from '../oci.js';
import { imageBlobs, type OciLayout } from './oci-layout.js';
import { CommandError, type RunResult } from './run.js';

/** Runs a client and requires it to fail with a non-zero exit status; returns the error. */
export async function failure(command: Promise<RunResult>): Promise<CommandError> {
  const outcome = await command.then(
    (result) => result,
    (err: unknown) => err,
  );
  expect(outcome, `expected the command to fail, it succeeded: ${JSON.stringify(outcome)}`).toBeInstanceOf(CommandError);
  const err = outcome as CommandError;
  expect(err.exit, err.message).toMatch(/^exited with status [1-9]\d*$/);
  return err;
}

/** `layout` holds every blob of `img` byte-exact, and names it `tag` when one is given. */
export async function expectImageInLayout(layout: OciLayout, tag: string | undefined, img: Image): Promise<void> {
  if (tag) expect(layout.ref(tag)).toMatchObject({ digest: img.manifest.digest, size: img.manifest.size });
  for (const blob of imageBlobs(img)) expect((await layout.blob(blob.digest)).equals(blob.data), `${layout.dir}: ${blob.digest}`).toBe(true);
}
