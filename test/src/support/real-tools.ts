// Tests against the real tools of a KVM host (swtpm, tpm2-tools, firmware stores) skip with their reason on a
// machine without them, and say so in the output. CI installs them (.ci/run) and sets HOSTFILES_REQUIRE_REAL_TOOLS:
// there a missing tool fails the test instead, so these tests can never be skipped silently where they must run.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';

/** True when the test must stop here (skipped, reason given); fails instead when the tools are required. */
export function skipWithout(t: TestContext, missing: string | undefined): boolean {
  if (missing === undefined) return false;
  if (process.env['HOSTFILES_REQUIRE_REAL_TOOLS'] === '1') assert.fail(`required here, but ${missing}`);
  t.skip(missing);
  return true;
}
