/**
 * The runbook pages an operation that names its runbook reads (`activities/runbook-pages.ts`):
 * a runbook larger than one page is cut so that the pages, joined, are the validated runbook, each
 * page under Temporal's 2 MB per payload; versions not stored, or stored but no longer valid, fail
 * with errors that name them and are not retried.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createRunbookPageActivities, RUNBOOK_PAGE_CHARS } from '../../activities/runbook-pages';
import { generateLargeDomainRunbook } from '../../runbooks/examples/large-domain';
import { validateRunbook } from '../../runbooks/validate';

const stored = new Map<string, string>([
  ['large@1', generateLargeDomainRunbook(3_000)],
  ['broken@1', 'apiVersion: dr.example.io/v1alpha1\nkind: Runbook\n'],
]);
const activities = createRunbookPageActivities({ runbooks: { get: (name, version) => Promise.resolve(stored.has(`${name}@${version}`) ? { text: stored.get(`${name}@${version}`)! } : undefined) } });

describe('runbook pages', () => {
  it('a runbook of 3,000 VMs is read in pages under 2 MB each that join into the validated runbook', async () => {
    const first = await activities.readRunbookPage({ name: 'large', version: 1, page: 0 });
    assert.ok(first.pages >= 2, `${first.pages} pages`);
    const pages = [first.text];
    for (let page = 1; page < first.pages; page++) pages.push((await activities.readRunbookPage({ name: 'large', version: 1, page })).text);
    for (const text of pages) assert.ok(Buffer.byteLength(text, 'utf8') < 2_000_000 && text.length <= RUNBOOK_PAGE_CHARS);
    assert.deepEqual(JSON.parse(pages.join('')), validateRunbook(stored.get('large@1')!).runbook);
  });

  it('a version not stored, or stored but no longer valid, fails without retries, naming it', async () => {
    await assert.rejects(activities.readRunbookPage({ name: 'large', version: 2, page: 0 }), (error: unknown) => error instanceof ApplicationFailure && error.type === 'UnknownRunbook' && /runbook large version 2 is not in the runbook store/.test(error.message));
    await assert.rejects(activities.readRunbookPage({ name: 'broken', version: 1, page: 0 }), (error: unknown) => error instanceof ApplicationFailure && error.type === 'RunbookMismatch' && /runbook broken version 1 no longer validates/.test(error.message));
  });
});
