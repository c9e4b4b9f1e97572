import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { generateToken } from '../../api/auth';
import { operationsRouter } from '../../api/operations';
import { runbooksRouter } from '../../api/runbooks';
import { decide, DOMAIN_MODES, type DomainRequest } from '../../common/domain-modes';
import { domainStatusKey } from '../../datapath/domain-status';
import { RECORD_FORMAT_VERSION } from '../../datapath/records';
import { runbookYaml } from '../fixtures/failover-domains';
import { apiCalls } from '../harness/api-calls';
import { useTestApi, useTestbed, type ApiPrincipal } from '../harness/testbed';

/** The operations the API offers, each with the request body that starts it. */
const OFFERED: Array<{ request: DomainRequest; body: (domain: string) => Record<string, unknown> }> = [
  { request: 'power-on', body: (domain) => ({ runbook: domain }) },
  { request: 'failover', body: () => ({ type: 'planned' }) },
  { request: 'continuous-failover', body: () => ({}) },
  { request: 'failback', body: () => ({ type: 'planned' }) },
  { request: 'continuous-failback', body: () => ({}) },
  { request: 'permanent-failover', body: (domain) => ({ confirm: domain }) },
];

/**
 * Offered too, but not walked here: a drill needs a runbook with test networks, a restore a domain
 * protected on the storage site with its points (their own tests start one).
 */
const ALSO_OFFERED: DomainRequest[] = ['drill', 'restore'];

describe('the domain mode table at the HTTP layer: every offered operation from every mode is started (202) or refused (409) before any workflow runs', () => {
  const operator: ApiPrincipal = { name: 'dr-lead', role: 'operator', token: generateToken() };
  const { stack, store, runbooks } = useTestbed({ workers: ['orchestration'] });
  const api = useTestApi({ principals: [operator], routers: (log) => [runbooksRouter({ store: runbooks, log }), operationsRouter({ client: stack.client, runbooks, store, log })] });
  const { call, submitRunbook } = apiCalls(() => api.url, operator.token);
  // A domain per (mode, operation): a started operation holds its domain's desk, which would refuse the next one.
  const cells = DOMAIN_MODES.flatMap((mode, m) => OFFERED.map((offered, o) => ({ mode, ...offered, domain: `walk-${m}-${o}` })));

  before(async () => {
    for (const { mode, domain } of cells) {
      await submitRunbook(runbookYaml(domain, {}));
      // A domain that has failed over runs at the recovery site (where a permanent failover makes it the primary).
      const runningAt = mode === 'Running in Failover' || mode === 'Continuous Failback in Progress' ? 'recovery' : 'primary';
      const status = { formatVersion: RECORD_FORMAT_VERSION, domain, mode, runningAt, vms: [], setBy: 'mode-table test', updatedAt: Date.now() };
      await store.put(domainStatusKey(store.prefix, domain), JSON.stringify(status), 'application/json');
    }
  });

  it('answers as the table decides', async () => {
    const walked: string[] = [];
    for (const { mode, request, body, domain } of cells) {
      const decision = decide(request, { mode });
      const answer = await call('POST', `/domains/${domain}/${request}`, body(domain));
      walked.push(`${mode} / ${request}: ${answer.status}`);
      if (!decision.allowed) {
        assert.equal(answer.status, 409, `${request} from ${mode}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.mode, mode);
        const allowed = [...OFFERED.map((o) => o.request), ...ALSO_OFFERED].filter((r) => decide(r, { mode }).allowed);
        assert.deepEqual(answer.body.allowedOperations, allowed, `the refusal names what ${mode} allows`);
      } else if (decision.completes) {
        // The mode says a continuous operation runs, but none does here: nothing to complete.
        assert.equal(answer.status, 409, `${request} from ${mode}: ${JSON.stringify(answer.body)}`);
        assert.match(String(answer.body.detail), new RegExp(`no ${decision.completes} is running to complete`));
      } else {
        assert.equal(answer.status, 202, `${request} from ${mode}: ${JSON.stringify(answer.body)}`);
        assert.match(String(answer.body.workflowId), new RegExp(`^${request}/${domain}/`));
      }
      const shown = await call('GET', `/domains/${domain}`);
      assert.equal(shown.body.mode, mode);
    }
    assert.equal(walked.length, DOMAIN_MODES.length * OFFERED.length);
  });

  it('refuses a failover by the runbook with its sites swapped, sent to fail back by hand, pointing at failback', async () => {
    const domain = 'swapped-sites';
    const runbook = runbookYaml(domain, {});
    const swapped = runbook.replace(`  name: ${domain}\n`, `  name: ${domain}-back\n`).replace('sites: { primary: primary, recovery: recovery }', 'sites: { primary: recovery, recovery: primary }');
    assert.notEqual(swapped, runbook);
    await submitRunbook(runbook);
    await submitRunbook(swapped);
    const status = { formatVersion: RECORD_FORMAT_VERSION, domain, mode: 'Running in Failover', runningAt: 'recovery', vms: [], setBy: 'mode-table test', updatedAt: Date.now() };
    await store.put(domainStatusKey(store.prefix, domain), JSON.stringify(status), 'application/json');

    const refused = await call('POST', `/domains/${domain}/failover`, { type: 'planned', runbook: `${domain}-back` });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.match(String(refused.body.detail), /sites swapped/);
    assert.equal(refused.body.use, `POST /domains/${domain}/failback`);
    assert.equal(refused.body.runningAt, 'recovery');
    // The runbook it failed over by is refused by the mode table instead: only the swapped one is told to use failback.
    const byModeTable = await call('POST', `/domains/${domain}/failover`, { type: 'planned' });
    assert.equal(byModeTable.status, 409, JSON.stringify(byModeTable.body));
    assert.doesNotMatch(String(byModeTable.body.detail), /sites swapped/);
    assert.deepEqual((await call('GET', `/domains/${domain}/operations`)).body, { domain, running: null, drill: null, recent: [] }, 'no operation started');
  });
});
