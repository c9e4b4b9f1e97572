/**
 * `npm run demo` (with `npm start` running): stages a disaster at the primary site, fails the
 * demo domain over by force through the HTTP API, prints the operation's progress and report,
 * and checks every recovered disk byte for byte against the primary's workload record.
 * `npm run demo -- --continuous` starts a continuous failover first, waits until its copy at the
 * recovery site follows the log, then stages the disaster and completes it by force.
 * `npm run demo -- --restore` brings the primary site back afterwards: its VMs run again while the
 * recovery site owns the domain (split-brain); the demo waits until the conflict is shown.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadSettings } from '../common/config';
import { describeError, OperatorError } from '../common/errors';
import { loadSiteDefinitions } from '../sites/config';
import { siteClients, readSiteTokens } from '../sites/registry';
import { expectedDiskContent, readWorkloadRecord } from '../sites/workload';
import type { FollowingStatus, OperationProgress, OperationReport } from '../workflows/operation-messages';
import { readLocalToken } from './credentials';

const DOMAIN = 'demo';
const started = Date.now();
const say = (message: string) => console.log(`[demo ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`);
const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { restore: { type: 'boolean' }, continuous: { type: 'boolean' } } });
  const settings = loadSettings();
  const api = `http://${settings.api.host}:${settings.api.port}`;
  const token = readLocalToken(settings.dataDir, 'operator');
  const definitions = loadSiteDefinitions();
  const siteTokens = readSiteTokens(path.join(settings.dataDir, 'secrets', 'site-tokens.json'));
  const clients = siteClients(definitions, siteTokens);
  const primary = definitions.find((d) => d.protectedDomains.some((p) => p.name === DOMAIN));
  const recovery = definitions.find((d) => d !== primary);
  if (!primary || !recovery) throw new OperatorError(`the site definitions have no domain ${DOMAIN} and recovery site`);
  const adminCall = async (route: string) => {
    const res = await fetch(`http://127.0.0.1:${primary.adminPort}${route}`, { method: 'POST', headers: { authorization: `Bearer ${siteTokens[primary.name]}` } });
    if (!res.ok) throw new OperatorError(`site ${primary.name} admin ${route} answered ${res.status}`);
  };
  const call = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`${api}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    }).catch(() => {
      throw new OperatorError(`the API at ${api} does not answer: is \`npm start\` running?`);
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status >= 400) throw new OperatorError(`${method} ${route} answered ${res.status}: ${String(json.detail ?? json.title)}`);
    return json;
  };

  if (values.restore) {
    await adminCall('/admin/restore');
    say(`site ${primary.name} is back; its VMs of ${DOMAIN} run again, fenced: the domain is owned by ${recovery.name} now`);
    await showConflict();
    return;
  }

  /** After the primary's return: its split-brain watch records the conflict within seconds. */
  async function showConflict(): Promise<void> {
    for (let waited = 0; waited <= 30_000; waited += 1_000) {
      const { conflict } = (await call('GET', `/domains/${DOMAIN}`)) as { conflict: { site: string; vms: string[]; since: string } | null };
      if (conflict) {
        say(`split-brain conflict: ${conflict.site} runs ${conflict.vms.join(', ')} since ${conflict.since} (see GET /domains/${DOMAIN}, or DrConflict = "${DOMAIN}" in the Web UI)`);
        say(`resolve it with: curl -X POST ${api}/domains/${DOMAIN}/resolve-conflict -H "authorization: Bearer <operator token>" -H 'content-type: application/json' -d '{"action":"deactivate"}'`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    say(`no split-brain conflict was recorded within 30 s (the primary's VMs of ${DOMAIN} may not run); see GET /domains/${DOMAIN}`);
  }

  for (let waited = 0; ; waited += 1_000) {
    const { owner, protection } = (await call('GET', `/domains/${DOMAIN}`)) as { owner: { site: string } | null; protection: { mode: string; cursor: number } | null };
    if (owner && owner.site !== primary.name) {
      throw new OperatorError(`${DOMAIN} runs at ${owner.site} already (an earlier demo failed it over); for a fresh demo stop \`npm start\`, delete ${settings.dataDir} and start again`);
    }
    if (protection?.mode === 'log' && protection.cursor > 0) break;
    if (waited === 0) say(`waiting for ${DOMAIN}'s protection to finish its initial sync (mode ${protection?.mode ?? 'unknown'})`);
    if (waited > 300_000) throw new OperatorError(`${DOMAIN} is not replicating in log mode after 5 minutes; see .logs/`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  if (values.continuous) await followUntilCaughtUp();
  say(`staging a disaster: site ${primary.name} goes down and refuses every connection`);
  await adminCall('/admin/outage');
  say(
    values.continuous
      ? `completing the continuous failover of ${DOMAIN} by force, confirmed by naming the domain`
      : `forced failover of ${DOMAIN} to ${recovery.name}, confirmed by naming the domain`,
  );
  const operation = (await call('POST', `/domains/${DOMAIN}/failover`, { type: 'forced', confirm: DOMAIN })) as { workflowId: string; statusUrl: string; webUiUrl?: string };
  say(`operation ${operation.workflowId}${operation.webUiUrl ? `\n    watch it in the Temporal Web UI: ${operation.webUiUrl}` : ''}`);

  /** Continuous failover: a copy at the recovery site follows the primary's log until the disaster. */
  async function followUntilCaughtUp(): Promise<void> {
    const started = (await call('POST', `/domains/${DOMAIN}/continuous-failover`, {})) as { workflowId: string; webUiUrl?: string };
    say(`continuous failover ${started.workflowId}: RocVA and representation VMs at ${recovery!.name}, rehydrating, then following the log${started.webUiUrl ? `\n    watch it in the Temporal Web UI: ${started.webUiUrl}` : ''}`);
    let caughtUpAt: number | undefined;
    for (let polls = 0; ; polls++) {
      const domain = (await call('GET', `/domains/${DOMAIN}`)) as { mode: string; continuousFailover?: { phase: string | null; following: FollowingStatus | null } };
      const f = domain.continuousFailover?.following;
      if (f && polls % 4 === 0) say(`mode ${domain.mode}: ${f.vms} VM(s) at ${recovery!.name}, lag ${seconds(f.lag.ms)} / ${f.lag.bytes} bytes, ${f.bytesWritten} bytes applied`);
      if (domain.mode === 'Continuous Rehydration in Progress') caughtUpAt ??= Date.now();
      // A few seconds of following while the workload keeps writing at the primary.
      if (caughtUpAt !== undefined && Date.now() - caughtUpAt > 5_000) return;
      if (polls > 1_200) throw new OperatorError(`the continuous failover did not catch up within 5 minutes; see ${started.workflowId} in the Web UI`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  let lastLine = '';
  let status: Record<string, unknown>;
  for (;;) {
    status = await call('GET', operation.statusUrl);
    const progress = status.progress as OperationProgress | undefined;
    if (progress) {
      const line = `${progress.phase} — ${progress.bytesRehydrated} bytes rehydrated, VMs: ${progress.vms.map((v) => `${v.name} ${v.state}`).join(', ')}`;
      if (line !== lastLine) say(line);
      lastLine = line;
    }
    if (status.status !== 'RUNNING') break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  if (status.status !== 'COMPLETED') throw new OperatorError(`the failover ended ${String(status.status)}: ${JSON.stringify(status.result, null, 2)}`);

  const report = status.result as OperationReport;
  console.log(`\n  ${values.continuous ? 'Continuous failover' : 'Failover'} of ${DOMAIN}: ${report.outcome}
    RTO achieved   ${seconds(report.rtoMs)} (declared ${new Date(report.declaredAt).toISOString()})
    RPO achieved   ${seconds(report.rpoMs)} (data from ${report.recoveryPoint ? new Date(report.recoveryPoint.dataFrom).toISOString() : '-'}, ${report.recoveryPoint?.description ?? ''})
    ownership      ${recovery.name}, epoch ${report.epoch ?? '-'}
    rehydrated     ${report.bytesRehydrated} bytes${report.tail ? `, of which ${report.tail.bytesWritten} bytes (${report.tail.segments} segments) after the disaster` : ''}
    steps:\n${report.steps.map((s) => `      ${s.stage ? '  ' : ''}${s.name.padEnd(s.stage ? 40 : 42)} ${seconds(s.durationMs).padStart(8)}`).join('\n')}\n`);

  const sequence = report.recoveryPoint?.lastJournalSequence;
  if (sequence === undefined) throw new OperatorError('the report names no journal position to verify against');
  const record = readWorkloadRecord(path.join(settings.dataDir, 'sites', primary.name, 'workload-record.jsonl'));
  const site = clients.get(recovery.name)!;
  const vms = (await site.listVms()).filter((vm) => report.vms.some((v) => v.name === vm.name));
  let disks = 0;
  for (const vm of vms) {
    for (const diskId of vm.diskIds) {
      const { sizeBytes } = await site.getDisk(diskId);
      const recovered = await site.readDisk(diskId, 0, sizeBytes);
      if (!recovered.equals(expectedDiskContent(record, diskId, sizeBytes, { sequence }))) throw new OperatorError(`disk ${diskId} at ${recovery.name} differs from the recovered point`);
      disks++;
    }
  }
  say(`verified: ${disks} disk(s) of ${vms.length} VM(s) at ${recovery.name} are byte-identical to the primary's writes up to journal sequence ${sequence}`);
  say(`bring the primary site back with: npm run demo -- --restore`);
}

main().catch((error: unknown) => {
  console.error(error instanceof OperatorError ? error.message : `demo failed: ${describeError(error)}`);
  process.exit(1);
});
